/**
 * Public API of the diffusion part: schedules and respacing, the Gaussian diffusion steps,
 * training losses (DDPM hybrid and rectified flow) with their gradients, the samplers, and the
 * seeded RNG.
 */
export { type DiffusionSchedule, type BetaScheduleName, linspace, linearBetas, cosineBetas, betasForAlphaBar, namedBetas, makeSchedule } from './schedule.js';
export { spaceTimesteps, respaceBetas, createDiffusion, roundHalfEven, type CreateDiffusionOptions } from './respace.js';
export { type Rng, Xoshiro128ss, makeRng } from './rng.js';
export {
  type VarType,
  type PMeanVarianceOptions,
  type PMeanVariance,
  type StepResult,
  extract,
  qSample,
  predXStartFromEps,
  predEpsFromXStart,
  qPosteriorMean,
  fixedVariance,
  pMeanVariance,
  ddpmStep,
  ddimStep,
} from './gaussian.js';
export { type Precision, type DdpmLossTerms, normalKl, approxStandardNormalCdf, discretizedGaussianLogLikelihood, ddpmLossForward, ddpmLossBackward } from './losses.js';
export { type RfTimeSampling, type RfLossTerms, rfSampleT, rfInterpolate, rfLossForward, rfLossBackward, rfEulerStep, rfPredX0 } from './rectifiedFlow.js';
export {
  type DiffusionModelFn,
  type Guidance,
  type StepNoise,
  type OnStep,
  type SampleOptions,
  type DiffusionSampleOptions,
  applyGuidance,
  forwardWithCfg,
  sampleDdpm,
  sampleDdim,
  sampleRectifiedFlow,
  flowVelocity,
} from './samplers.js';
export {
  type DpmAlgorithm,
  type DpmMethod,
  type DpmSkipType,
  type NoiseScheduleVP,
  type DpmModel,
  type DpmSampleOptions,
  type DpmSolverSampleOptions,
  DpmSolver,
  discreteSchedule,
  flowSchedule,
  getTimeSteps,
  singlestepOrders,
  noisePredictionModel,
  velocityModel,
  sampleDpmSolver,
} from './dpmSolver.js';
export { sampleHeun } from './heun.js';
export {
  SAMPLERS,
  SPACINGS,
  type SamplerName,
  type SamplerSetup,
  type Objective,
  type SampleRequest,
  type SamplableModel,
  checkSampler,
  modelEvaluations,
  guidancePasses,
  predictionOf,
  sampleWith,
  sampleImages,
} from './sampling.js';
