# Sourced by run.sh and fuzz.sh: the checks and the virtualenv both need.

# Exits unless $BAKCH_BIN is an executable; $1 names the script in the message.
require_bakch_bin() {
    if [ ! -x "$BAKCH_BIN" ]; then
        echo "$1: no bakch binary at $BAKCH_BIN (run 'cargo build' or set BAKCH_BIN)" >&2
        exit 2
    fi
}

# Creates the virtualenv $1 if needed and installs the requirements file $2 into it (quiet when
# everything is already there; pip only fetches what is missing).
ensure_venv() {
    if [ ! -x "$1/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$1"
    fi
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check -r "$2"
}
