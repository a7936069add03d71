#!/usr/bin/env bash
# Installs what ocsp-hsm needs and is missing, then builds; cheap when nothing changed.
#   scripts/ensure-deps.sh run    what `npm start` needs (SoftHSM2, OpenSSL, npm packages, build)
#   scripts/ensure-deps.sh test   plus the test clients (GnuTLS ocsptool, Python cryptography, BouncyCastle), PostgreSQL,
#                                 HAProxy (the cluster test), promtool (checks the metrics and the alert rules)
#                                 and systemd-analyze
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-run}"

say() { printf 'ocsp-hsm setup: %s\n' "$*" >&2; }

# --- Debian packages: "check|package" pairs; a check is a file or a command that must succeed.
need=(
  "/usr/lib/softhsm/libsofthsm2.so|softhsm2"
  "cmd:openssl|openssl"
)
if [ "$profile" = test ]; then
  need+=(
    "cmd:ocsptool|gnutls-bin"
    "py:cryptography|python3-cryptography"
    # The BouncyCastle client of the nonce test (native-test/clients/BcOcspCheck.java), compiled there with javac.
    "cmd:javac|default-jdk-headless"
    "/usr/share/java/bcpkix.jar|libbcpkix-java"
    # Server binaries for the throwaway clusters of the PostgreSQL store tests (the package's own default
    # cluster, which Debian may create and start, is never used).
    "glob:/usr/lib/postgresql/*/bin/initdb|postgresql"
    # The load balancer of the cluster test, run in the foreground on 127.0.0.1 ports (the package's own service,
    # which listens on nothing by default, is kept from starting like the others).
    "/usr/sbin/haproxy|haproxy"
    # Only its promtool is used; the Prometheus server it also installs is kept from running (below).
    "cmd:promtool|prometheus"
    # systemd-analyze verifies the unit in config/ (systemd itself need not run).
    "cmd:systemd-analyze|systemd"
  )
fi

missing=()
for pair in "${need[@]}"; do
  check="${pair%%|*}"; pkg="${pair##*|}"
  case "$check" in
    cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    py:*) /usr/bin/python3 -c "import ${check#py:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    glob:*) compgen -G "${check#glob:}" >/dev/null || missing+=("$pkg") ;;
    *) [ -e "$check" ] || missing+=("$pkg") ;;
  esac
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Services of the packages installed here are not to be started: a policy-rc.d answering 101 ("action
    # forbidden") is what invoke-rc.d and deb-systemd-invoke ask. One already there is left as it is.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# ocsp-hsm setup: no service starts while it installs packages\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$(trap -p EXIT)" ]; then rm -f "$policy"; trap - EXIT; fi
    # Whatever the policy said: no Prometheus server left running or starting at boot (only promtool is used).
    if [[ " ${missing[*]} " == *" prometheus "* ]]; then
      if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
      elif [ -x /etc/init.d/prometheus ]; then
        /etc/init.d/prometheus stop >/dev/null 2>&1 || true
        update-rc.d prometheus disable >/dev/null 2>&1 || true
      fi
    fi
  else
    say "missing Debian packages: ${missing[*]}"
    say "install them as root, then run this command again:"
    say "  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# --- npm packages: reinstall only when package-lock.json changed (pkcs11js and better-sqlite3 build from source).
stamp=node_modules/.ocsp-hsm-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm packages (native modules build from source; about 1-2 minutes)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# --- TypeScript: skipped when no source is newer than the last build; incremental otherwise.
built=dist/.tsbuildinfo
if [ ! -f "$built" ] || [ -n "$(find src test native-test bench tsconfig.json package-lock.json -newer "$built" -print -quit 2>/dev/null)" ]; then
  npx --no-install tsc -p tsconfig.json
  touch "$built"
fi
