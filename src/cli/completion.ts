/**
 * `vecscale completion bash|zsh|fish`: a completion script made from the commander tree itself (commands,
 * subcommands, their options; files for the rest), so it never lists a command or option that does not exist.
 * commander has none built in; this stays small on purpose: words, not argument values.
 */
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Entry {
  /** `sandbox up` → ['sandbox', 'up']. */
  readonly path: readonly string[];
  readonly description: string;
  readonly options: readonly string[];
  readonly subcommands: readonly string[];
}

function entries(cmd: Command, path: readonly string[] = []): Entry[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  const own: Entry = {
    path,
    description: cmd.description(),
    options: cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))),
    // Subcommands, and an argument's fixed choices (completion's shells).
    subcommands: [...subs.map((c) => c.name()), ...cmd.registeredArguments.flatMap((a) => a.argChoices ?? [])],
  };
  return [own, ...subs.flatMap((c) => entries(c, [...path, c.name()]))];
}

// Words are command and option names (lowercase letters, digits, dashes): nothing to quote in any shell.
const words = (xs: readonly string[]): string => xs.join(' ');

function bash(all: Entry[]): string {
  const cases = all
    .map((e) => `    "${e.path.join(' ')}") subs="${words(e.subcommands)}" opts="${words([...e.options, '--help'])}" ;;`)
    .join('\n');
  return `# vecscale completion for bash: eval "$(vecscale completion bash)", or save it in /etc/bash_completion.d/vecscale
_vecscale_words() {
  case "$1" in
${cases}
    *) subs="" opts="" ;;
  esac
}
_vecscale() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w f subs opts
  # The command path so far: each word that is a subcommand of the path before it.
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    _vecscale_words "$path"
    case " $subs " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  _vecscale_words "$path"
  COMPREPLY=()
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$subs" ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    # A command's arguments: file names (one a line, so names with spaces stay whole).
    while IFS= read -r f; do COMPREPLY+=("$f"); done < <(compgen -f -- "$cur")
  fi
  return 0
}
complete -o filenames -F _vecscale vecscale
`;
}

function zsh(all: Entry[]): string {
  // zsh runs bash's completion functions through bashcompinit: source it, e.g. from ~/.zshrc.
  return bash(all)
    .replace(/^# vecscale completion for bash.*\n/, '# vecscale completion for zsh: source <(vecscale completion zsh) in ~/.zshrc\nautoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n');
}

function fish(all: Entry[]): string {
  const lines = ['# vecscale completion for fish: vecscale completion fish > ~/.config/fish/completions/vecscale.fish', 'complete -c vecscale -f'];
  for (const e of all) {
    const cond = e.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${e.path.at(-1)}`;
    for (const s of e.subcommands) {
      const sub = all.find((x) => x.path.join(' ') === [...e.path, s].join(' ')) ?? { description: '' };
      const desc = (sub?.description ?? '').replace(/'/g, "\\'").slice(0, 80);
      lines.push(`complete -c vecscale -n '${cond}' -a ${s} -d '${desc}'`);
    }
    for (const o of e.options) {
      lines.push(`complete -c vecscale -n '${cond}' ${o.startsWith('--') ? `-l ${o.slice(2)}` : `-s ${o.slice(1)}`}`);
    }
  }
  lines.push("complete -c vecscale -n 'not __fish_use_subcommand' -F");
  return `${lines.join('\n')}\n`;
}

export function completionScript(program: Command, shell: Shell): string {
  const all = entries(program);
  return shell === 'bash' ? bash(all) : shell === 'zsh' ? zsh(all) : fish(all);
}
