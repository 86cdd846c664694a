#!/bin/sh
# The targets bash-completion's `make` completion finds in the current directory:
# `make -npq .DEFAULT` parsed by the same sed script (bash-completion 2.11,
# _make_target_extract_script, with an empty prefix but keeping whole names).
# Usage: scripts/bash-completion-targets.sh [make args...]
LC_ALL=C ${MAKE:-make} -npq __BASH_MAKE_COMPLETION__=1 "$@" .DEFAULT 2>/dev/null | sed -ne '
    1,/^# *Make data base/           d
    /^# *Finished Make data base/,/^# *Make data base/{
                                      d
    }
    /^# *Variables/,/^# *Files/       d
    /^# *Not a target/,/^$/           d
    /^# *File is an intermediate prerequisite/ {
      s/^.*$//;x
      d
    }
    /^$/ {
      x
      /^$/d
      s|^\([^:]*\):.*$|\1|p
      d
    }
    /^[^#	:%]\{1,\}:/ {
      /^\.PHONY:/                 d
      /^\.SUFFIXES:/              d
      /^\.DEFAULT:/               d
      /^\.PRECIOUS:/              d
      /^\.INTERMEDIATE:/          d
      /^\.SECONDARY:/             d
      /^\.SECONDEXPANSION/        d
      /^\.DELETE_ON_ERROR:/       d
      /^\.IGNORE:/                d
      /^\.LOW_RESOLUTION_TIME:/   d
      /^\.SILENT:/                d
      /^\.EXPORT_ALL_VARIABLES:/  d
      /^\.NOTPARALLEL:/           d
      /^\.ONESHELL:/              d
      /^\.POSIX:/                 d
      /^\.NOEXPORT:/              d
      /^\.MAKE:/                  d
      /^[^a-zA-Z0-9]/             d
      h
      d
    }
' | sort -u
