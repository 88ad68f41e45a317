# scripts/lib.sh - shell functions shared by the scripts; source it:
#   . "$(dirname "$0")/lib.sh"

# install_missing TAG PACKAGE... - installs the Debian packages of the list
# that are not installed yet (apt-get, through sudo unless root), saying
# which under TAG; does nothing when all are there.
install_missing() {
  local tag=$1 p
  shift
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$tag: installing ${missing[*]}"
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}
