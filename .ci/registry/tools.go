//go:build tools

// The OCI registry of the air-gap tests (tests/cli_airgap.rs): distribution's
// registry, at the version go.mod names. .ci/registry/build.sh builds it.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
