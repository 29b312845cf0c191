/** What every `mucodec` sub-command gets besides its arguments (src/cli.ts builds it; tests pass their own). */
export interface CommandContext {
  verbose?: boolean;
  /** --backend (else MUCODEC_BACKEND, else the first that loads) */
  backend?: string;
  /** where progress and notices go (default process.stderr) */
  stderr?: NodeJS.WriteStream;
  /** where result lines go (default console.log) */
  log?: (line: string) => void;
}

export type Command = (argv: string[], ctx: CommandContext) => Promise<number>;
