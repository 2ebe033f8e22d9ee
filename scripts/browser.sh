# Sourced by scripts/test: make sure the Chromium the browser tests drive is installed.
# In CI (CI=true) a browser that cannot be installed is a failure; elsewhere the browser
# tests skip with a notice. Playwright drives Debian's chromium (no browser download).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium: installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || true
fi
if command -v chromium >/dev/null 2>&1; then
  echo "Chromium: $(chromium --version 2>/dev/null | head -1)"
elif [ "${CI:-}" = "true" ]; then
  echo "Chromium is required in CI and could not be installed" >&2
  exit 1
else
  echo "NOTICE: chromium is not installed: the browser tests will be skipped" >&2
fi
if [ "${CI:-}" = "true" ]; then export ENTITLE_REQUIRE_BROWSER=1; fi
