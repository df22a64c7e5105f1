/** The list of commands; each file adds one (or a small family) to the program. */
import type { Command } from 'commander';

export const commands: ((program: Command) => void)[] = [];
