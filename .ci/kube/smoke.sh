#!/usr/bin/env bash
# smoke.sh - what the tests rely on, checked against the cluster start.sh
# started: a CEL rule in a CRD, fieldValidation=Strict, a Job's pod scheduled
# by the real scheduler onto a kwok node and completed, Pod Security
# `restricted` enforced in a labelled namespace, RBAC denial, bound tokens.
# One line per check, then 'N passed, N failed'; exit 1 if any failed. Every
# object it makes carries a per-run name and is deleted at the end.
set -uo pipefail
KUBE_DIR=${KUBE_DIR:-$HOME/.cache/aicr-test-kube-modern}
export KUBECONFIG=$KUBE_DIR/kubeconfig
K=$KUBE_DIR/bin/kubectl
ID=$(date +%s)-$RANDOM NS=smoke-$ID RNS=smoke-restricted-$ID NODE=smoke-kwok-$ID GROUP=smoke$RANDOM.aicr.test
pass=0 fail=0
ok()  { pass=$((pass+1)); echo "PASS $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "     ${2:0:600}"; }
check() { local name=$1 out; shift; if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi; }
# retry SECS COMMAND...: re-runs COMMAND until it succeeds or SECS pass.
# `kubectl wait --for=condition=X` fails at once ("accessor error: <nil>")
# when it reads an object whose conditions the server has not written yet.
retry() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 0.2; done
}
expect_refused() {  # expect_refused NAME PATTERN COMMAND...: fails, saying PATTERN
  local name=$1 pat=$2 out; shift 2
  if out=$("$@" 2>&1); then bad "$name" "accepted: $out"
  elif grep -q -- "$pat" <<<"$out"; then ok "$name"; else bad "$name" "$out"; fi
}
cleanup() {
  $K delete namespace "$NS" "$RNS" --wait=false >/dev/null 2>&1
  $K delete node "$NODE" --wait=false >/dev/null 2>&1
  $K delete crd "gadgets.$GROUP" --wait=false >/dev/null 2>&1
}
trap cleanup EXIT

check "readyz" $K get --raw /readyz
echo "     server: $($K version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)"
check "namespaces" $K create namespace "$NS"
check "client-certificate context" $K --context local-cert -n "$NS" get configmaps

# CEL validation rule in a CRD (Kubernetes 1.25+)
check "CRD with a CEL rule" $K apply --server-side -f - <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.$GROUP}
spec:
  group: $GROUP
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.min <= self.max", message: "min must be <= max"}
            properties:
              min: {type: integer}
              max: {type: integer}
EOF
check "CRD established" retry 30 $K wait --for=condition=Established --timeout=30s "crd/gadgets.$GROUP"
expect_refused "CEL rule refuses a bad custom resource" "min must be <= max" \
  $K -n "$NS" create -f - <<<"{\"apiVersion\":\"$GROUP/v1\",\"kind\":\"Gadget\",\"metadata\":{\"name\":\"g1\"},\"spec\":{\"min\":5,\"max\":1}}"

# fieldValidation=Strict: an unknown field is an error (1.20 dropped it silently)
DEPLOY='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"d1"}},"template":{"metadata":{"labels":{"app":"d1"}},"spec":{"containers":[{"name":"c","image":"busybox","bogusField":true}]}}}}'
expect_refused "fieldValidation=Strict refuses an unknown field" 'unknown field "spec.template.spec.containers\[0\].bogusField"' \
  $K -n "$NS" create --dry-run=server --validate=strict -f - <<<"$DEPLOY"
expect_refused "fieldValidation=Strict refuses an unknown field of a custom resource" 'unknown field "spec.colour"' \
  $K -n "$NS" create --dry-run=server --validate=strict -f - <<<"{\"apiVersion\":\"$GROUP/v1\",\"kind\":\"Gadget\",\"metadata\":{\"name\":\"g2\"},\"spec\":{\"min\":1,\"max\":2,\"colour\":\"red\"}}"

# A Job: the scheduler binds its pod to the kwok node, kwok runs and completes it
check "kwok node" $K apply -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  labels: {type: kwok, kubernetes.io/hostname: $NODE}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
EOF
check "kwok node Ready" retry 60 $K wait --for=condition=Ready --timeout=60s "node/$NODE"
check "Job" $K -n "$NS" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: j1}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {type: kwok}
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers: [{name: c, image: busybox, command: ["true"]}]
EOF
check "Job complete" retry 90 $K -n "$NS" wait --for=condition=Complete --timeout=90s job/j1
node=$($K -n "$NS" get pods -l job-name=j1 -o jsonpath='{.items[0].spec.nodeName}' 2>&1)
[ "$node" = "$NODE" ] && ok "the Job's pod was scheduled onto the kwok node" || bad "the Job's pod was scheduled onto the kwok node" "nodeName: $node"
phase=$($K -n "$NS" get pods -l job-name=j1 -o jsonpath='{.items[0].status.phase}' 2>&1)
[ "$phase" = Succeeded ] && ok "the Job's pod Succeeded" || bad "the Job's pod Succeeded" "phase: $phase"
check "the pod got a bound service-account token volume" sh -c \
  "$K -n $NS get pods -l job-name=j1 -o json | jq -e '.items[0].spec.volumes[] | select(.projected.sources[]?.serviceAccountToken)'"

# Pod Security admission: restricted enforced in a labelled namespace
check "restricted namespace" sh -c "$K create namespace $RNS && $K label namespace $RNS pod-security.kubernetes.io/enforce=restricted"
expect_refused "PodSecurity restricted refuses a privileged pod" 'violates PodSecurity "restricted:latest"' \
  $K -n "$RNS" run p1 --image=busybox --restart=Never --privileged
check "PodSecurity restricted admits a restricted pod" $K -n "$RNS" create --dry-run=server -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: p2}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: busybox
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF

# RBAC
expect_refused "RBAC denies a token without bindings" 'forbidden' $K --context nobody -n "$NS" get configmaps
check "role and binding for nobody" sh -c "$K -n $NS create role cm-reader --verb=get,list --resource=configmaps && $K -n $NS create rolebinding nobody-cm --role=cm-reader --user=aicr-nobody"
for _ in $(seq 1 20); do $K --context nobody -n "$NS" get configmaps >/dev/null 2>&1 && break; sleep 0.25; done
check "RBAC allows after the binding" $K --context nobody -n "$NS" get configmaps
expect_refused "RBAC still denies secrets" 'forbidden' $K --context nobody -n "$NS" get secrets
check "aggregated ClusterRole view is filled" sh -c "$K get clusterrole view -o json | jq -e '.rules | length > 0'"
check "service account token (TokenRequest)" sh -c "$K -n $NS create serviceaccount sa1 >/dev/null && $K -n $NS create token sa1 | grep -q '^ey'"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
