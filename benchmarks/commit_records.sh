# Sourced by the long grids (zoo_quick.sh, study.sh): commit_records MESSAGE DIR... commits the new and changed
# files under each DIR (records, per-sequence values, examples, model cards), never the weights (*.safetensors,
# a few MB each: kept on disk) nor a cell's lock. Files are listed explicitly: git 2.39 adds nothing for
# `git add -- DIR ':!*.safetensors'` when DIR holds an untracked subfolder of weights.
commit_records() {  # message dir...
  local msg=$1
  shift
  git ls-files -z --others --modified --exclude-standard -- "$@" \
    | grep -zv -e '\.safetensors$' -e '\.lock$' | xargs -0r git add --
  git diff --cached --quiet || git commit -q -m "$msg"
}
