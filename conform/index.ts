/** The conformance harness: case kinds register themselves on import. */
import './forward.js';
import './moeLayer.js';
import './schedule.js';
import './sample.js';
import './solvers.js';
import './train.js';
import './vae.js';

export { runCase, supportedKinds, registerCaseKind, type CaseContext, type CaseRunner } from './case.js';
export { compareTensors, formatCompareLine, defaultRtol, type CompareLine } from './compare.js';
