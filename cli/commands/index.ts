/** The list of commands; each file adds one (or a small family) to the program. */
import type { Command } from 'commander';
import { register as conform } from './conform.js';
import { register as info } from './info.js';

export const commands: ((program: Command) => void)[] = [conform, info];
