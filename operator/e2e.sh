#!/usr/bin/env bash
# End-to-end on a real cluster (any KUBECONFIG): installs the CRD, runs the operator from this
# checkout against the cluster, applies the example homelab instance into a scratch namespace
# and waits for its conditions. Exits 0 with "skipped: ..." when no cluster answers.
#
#   KUBECONFIG=~/.kube/microk8s operator/e2e.sh
#
# E2E_EXPECT=observed (default) waits until the operator has reconciled the example and
#   written its conditions (works on a bare cluster: missing CloudNativePG / RabbitMQ /
#   Gateway API CRDs show up as Degraded=MissingCrd, which is itself checked).
# E2E_EXPECT=ready additionally waits for Ready=True: needs those operators, the published
#   image and the example's Secrets in the namespace.
# E2E_NAMESPACE (default protostar-e2e), E2E_KEEP=1 keeps the namespace afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

ns=${E2E_NAMESPACE:-protostar-e2e}
expect=${E2E_EXPECT:-observed}
timeout=${E2E_TIMEOUT:-180s}

if ! command -v kubectl >/dev/null 2>&1; then
    echo "skipped: kubectl not found"
    exit 0
fi
if ! kubectl version --request-timeout=5s >/dev/null 2>&1; then
    echo "skipped: no cluster answers (KUBECONFIG=${KUBECONFIG:-unset})"
    exit 0
fi

echo "== cluster: $(kubectl config current-context 2>/dev/null || echo '?')"
echo "== installing the CRD"
kubectl apply --server-side --force-conflicts -f crds/protostar.dev_protostars.yaml
kubectl wait --for=condition=Established crd/protostars.protostar.dev --timeout=60s

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -

echo "== building and starting the operator (leader lease in $ns)"
cargo build -q -p protostar-operator --bin protostar-operator
log=$(mktemp)
target/debug/protostar-operator --namespace "$ns" --lease-namespace "$ns" \
    --http-addr 127.0.0.1:18080 --identity "e2e-$$" >"$log" 2>&1 &
operator=$!
cleanup() {
    kill "$operator" 2>/dev/null || true
    wait "$operator" 2>/dev/null || true
    if [[ "${E2E_KEEP:-0}" != 1 ]]; then
        kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    fi
    echo "== operator log: $log"
}
trap cleanup EXIT

for _ in $(seq 1 30); do
    curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
    sleep 1
done

echo "== applying the example instance into $ns"
sed -e "s/^  namespace: protostar$/  namespace: $ns/" gitops/instances/homelab/protostar.yaml |
    kubectl apply -f -

echo "== waiting for the operator to observe generation 1"
kubectl -n "$ns" wait protostar/home --for=jsonpath='{.status.observedGeneration}'=1 --timeout="$timeout"
for condition in Ready Progressing Degraded DatabaseReady BrokerReady RedisReady Migrated GatewayAvailable RoutesAccepted; do
    status=$(kubectl -n "$ns" get protostar/home -o jsonpath="{.status.conditions[?(@.type==\"$condition\")].status}")
    reason=$(kubectl -n "$ns" get protostar/home -o jsonpath="{.status.conditions[?(@.type==\"$condition\")].reason}")
    if [[ -z "$status" ]]; then
        echo "FAIL: condition $condition missing"
        exit 1
    fi
    printf '   %-18s %-5s %s\n' "$condition" "$status" "$reason"
done
kubectl -n "$ns" get configmap home-config >/dev/null
kubectl -n "$ns" get secret home-signing-keys >/dev/null
echo "   configuration and generated signing key exist"

if [[ "$expect" == ready ]]; then
    echo "== waiting for Ready=True"
    kubectl -n "$ns" wait protostar/home --for=condition=Ready --timeout="$timeout"
fi
kubectl -n "$ns" get protostar/home
echo "== e2e passed ($expect)"
