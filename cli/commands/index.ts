/** The list of commands; each file adds one (or a small family) to the program. */
import type { Command } from 'commander';
import { register as conform } from './conform.js';
import { register as info } from './info.js';
import { register as sample } from './sample.js';
import { register as convert } from './convert.js';
import { register as analyze } from './analyze.js';
import { register as train } from './train.js';
import { register as evalCmd } from './eval.js';
import { register as upcycle } from './upcycle.js';
import { register as decode } from './decode.js';
import { register as encode } from './encode.js';

export const commands: ((program: Command) => void)[] = [conform, info, sample, convert, train, evalCmd, analyze, upcycle, decode, encode];
