/**
 * Where a `.pt` carries our model configuration.
 *
 * In a training checkpoint in train.py's format (io/pt/officialCheckpoint.ts): in
 * `args['dit_moe']['config']`, a dict.
 *
 * In a bare state dict, where PyTorch itself keeps per-module
 * information: the state dict's `_metadata` attribute (an OrderedDict, module prefix → dict,
 * set by BUILD after the items; `module.state_dict()` writes `{'': {'version': 1}, ...}`).
 * We add one entry under a key no module of DiT has:
 *   sd._metadata['dit_moe'] = {'config': '<the configuration as JSON>'}
 * `torch.load` (also with weights_only=True), the official `find_model` (it returns the dict
 * as it is) and `model.load_state_dict(sd, strict=True)` accept it unchanged: load_state_dict
 * looks up `_metadata` by module prefix only, so the extra entry is never read; the keys of the
 * dict stay exactly the official names. So `.safetensors → .pt → .safetensors` keeps
 * `__metadata__.config`.
 */
import { PickleDict, type PickleValue } from './pickle.js';
import { dictAttributes, type PyValue } from './unpickle.js';

/** Our key: the section of train.py's `args`, and the entry of a state dict's `_metadata`. */
export const OUR_KEY = 'dit_moe';

/** The BUILD state that carries `configJson` in a state dict's `_metadata`. */
export function configAttributes(configJson: string): PickleValue {
  const entry = new PickleDict([['config', configJson]], false);
  return new PickleDict([['_metadata', new PickleDict([[OUR_KEY, entry]], true)]], false);
}

/** The configuration JSON a state dict carries in its `_metadata`, if any. */
export function carriedConfig(sd: Map<PyValue, PyValue>): string | undefined {
  const attrs = dictAttributes.get(sd);
  const meta = attrs instanceof Map ? attrs.get('_metadata') : undefined;
  const ours = meta instanceof Map ? meta.get(OUR_KEY) : undefined;
  const config = ours instanceof Map ? ours.get('config') : undefined;
  return typeof config === 'string' ? config : undefined;
}

/** The configuration (a dict) in a training checkpoint's `args['dit_moe']['config']`, if any. */
export function argsConfig(args: PyValue | undefined): Map<PyValue, PyValue> | undefined {
  const ours = args instanceof Map ? args.get(OUR_KEY) : undefined;
  const config = ours instanceof Map ? ours.get('config') : undefined;
  return config instanceof Map ? config : undefined;
}
