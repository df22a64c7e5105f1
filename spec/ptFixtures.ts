/**
 * Pickles written by CPython 3.11's own `pickle` module (not by this project), kept as hex so
 * the tests need no Python. Made by a script that installs stand-in `torch` / `torch._utils`
 * modules, so the GLOBAL opcodes are the ones torch.save writes, and pickles with a
 * `persistent_id` returning ('storage', torch.FloatStorage, key, 'cpu', numel) as torch.save does.
 *
 * TRAIN_PKL: {model: OrderedDict(w: storage 0 [2,2], b: storage 0 offset 4 [2], idx: LongStorage 3 [3]),
 *   ema: the same names on storage 1, opt: {state: {0: {step: storage 4 [], exp_avg: storage 2 [6]}},
 *   param_groups: [{lr: 1e-4, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0, amsgrad: False, params: [0, 1]}]},
 *   args: argparse.Namespace(model='DiT-S/2', image_size=256, num_experts=8, lr=1e-4, rf=False,
 *   results_dir=None, tags=['a', 'b']), step: 7, loss: 0.25}
 * PARAM_PKL: OrderedDict(w: nn.Parameter of a view of storage 0: offset 1, size (2,), stride (2,))
 * VALS_PKL[p] (protocol p = 2..5): {'a': [1, 2.5, None, True, False, (3, -4)], 'big': 2**70, 'neg': -300,
 *   'i32': -70000, 'u16': 40000, 'b': b'xy', 'u': 'h\u00e9llo \u2603', 'f': -1.5e-300,
 *   'nested': {'k': [[], (), {}]}, 7: 'int key', 'od': OrderedDict(x=1, y=[2]), 'shared': (lst, lst)} with lst = [1, 2],
 *   'set': {3}, 'fset': frozenset([4])
 * POSIX_SYSTEM_PKL / POSIX_SYSTEM4_PKL: os.system('echo pwned') via __reduce__, protocols 2 and 4 (os.system is posix.system)
 * EVAL_PKL: builtins.eval('1+1') via __reduce__
 */
const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

export const TRAIN_PKL = hex('80027d71002858050000006d6f64656c710163636f6c6c656374696f6e730a4f726465726564446963740a71022952710328580100000077710463746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71052828580700000073746f72616765710663746f7263680a466c6f617453746f726167650a71075801000000307108580300000063707571094b0674710a514b004b024b0286710b4b024b0186710c8968022952710d74710e52710f58010000006271106805282868066807680868094b06747111514b044b028571124b01857113896802295271147471155271165803000000696478711768052828680663746f7263680a4c6f6e6753746f726167650a7118580100000033711968094b0374711a514b004b0385711b68138968022952711c74711d52711e755803000000656d61711f6802295271202868046805282868066807580100000031712168094b06747122514b00680b680c8968022952712374712452712568106805282868066807682168094b06747126514b04681268138968022952712774712852712968176805282868066818681968094b0374712a514b00681b68138968022952712b74712c52712d7558030000006f7074712e7d712f285805000000737461746571307d71314b007d71322858040000007374657071336805282868066807580100000034713468094b01747135514b0029298968022952713674713752713858070000006578705f61766771396805282868066807580100000032713a68094b0674713b514b004b0685713c68138968022952713d74713e52713f7573580c000000706172616d5f67726f75707371405d71417d71422858020000006c727143473f1a36e2eb1c432d580500000062657461737144473feccccccccccccd473feff7ced916872b86714558030000006570737146473e45798ee2308c3a580c0000007765696768745f646563617971474b005807000000616d73677261647148895806000000706172616d7371495d714a284b004b0165756175580400000061726773714b6361726770617273650a4e616d6573706163650a714c2981714d7d714e28680158070000004469542d532f32714f580a000000696d6167655f73697a6571504d0001580b0000006e756d5f6578706572747371514b086843473f1a36e2eb1c432d58020000007266715289580b000000726573756c74735f64697271534e58040000007461677371545d7155285801000000617156681065756268334b0758040000006c6f73737157473fd0000000000000752e');
export const PARAM_PKL = hex('800263636f6c6c656374696f6e730a4f726465726564446963740a710029527101580100000077710263746f7263682e5f7574696c730a5f72656275696c645f706172616d657465720a710363746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71042828580700000073746f72616765710563746f7263680a466c6f617453746f726167650a71065801000000307107580300000063707571084b06747109514b014b0285710a680a8968002952710b74710c52710d8868002952710e87710f527110732e');
export const VALS_PKL: Record<number, Uint8Array> = {
  2: hex('80027d71002858010000006171015d7102284b014740040000000000004e88894b034afcffffff86710365580300000062696771048a0900000000000000004058030000006e656771054ad4feffff580300000069333271064a90eefeff580300000075313671074d409c5801000000627108635f636f646563730a656e636f64650a710958020000007879710a58060000006c6174696e31710b86710c52710d580100000075710e580a00000068c3a96c6c6f20e29883710f58010000006671104781b01297d23ab68358060000006e657374656471117d711258010000006b71135d7114285d7115297d711665734b075807000000696e74206b6579711758020000006f64711863636f6c6c656374696f6e730a4f726465726564446963740a71192952711a28580100000078711b4b01580100000079711c5d711d4b0261755806000000736861726564711e5d711f284b014b0265681f86712058030000007365747121635f5f6275696c74696e5f5f0a7365740a71225d71234b03618571245271255804000000667365747126635f5f6275696c74696e5f5f0a66726f7a656e7365740a71275d71284b046185712952712a752e'),
  3: hex('80037d71002858010000006171015d7102284b014740040000000000004e88894b034afcffffff86710365580300000062696771048a0900000000000000004058030000006e656771054ad4feffff580300000069333271064a90eefeff580300000075313671074d409c5801000000627108430278797109580100000075710a580a00000068c3a96c6c6f20e29883710b580100000066710c4781b01297d23ab68358060000006e6573746564710d7d710e58010000006b710f5d7110285d7111297d711265734b075807000000696e74206b6579711358020000006f64711463636f6c6c656374696f6e730a4f726465726564446963740a7115295271162858010000007871174b0158010000007971185d71194b0261755806000000736861726564711a5d711b284b014b0265681b86711c5803000000736574711d636275696c74696e730a7365740a711e5d711f4b03618571205271215804000000667365747122636275696c74696e730a66726f7a656e7365740a71235d71244b0461857125527126752e'),
  4: hex('80049504010000000000007d94288c0161945d94284b014740040000000000004e88894b034afcffffff8694658c03626967948a090000000000000000408c036e6567944ad4feffff8c03693332944a90eefeff8c03753136944d409c8c01629443027879948c0175948c0a68c3a96c6c6f20e29883948c0166944781b01297d23ab6838c066e6573746564947d948c016b945d94285d94297d9465734b078c07696e74206b6579948c026f64948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0178944b018c0179945d944b0261758c06736861726564945d94284b014b0265681d86948c03736574948f94284b03908c046673657494284b049194752e'),
  5: hex('80059504010000000000007d94288c0161945d94284b014740040000000000004e88894b034afcffffff8694658c03626967948a090000000000000000408c036e6567944ad4feffff8c03693332944a90eefeff8c03753136944d409c8c01629443027879948c0175948c0a68c3a96c6c6f20e29883948c0166944781b01297d23ab6838c066e6573746564947d948c016b945d94285d94297d9465734b078c07696e74206b6579948c026f64948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0178944b018c0179945d944b0261758c06736861726564945d94284b014b0265681d86948c03736574948f94284b03908c046673657494284b049194752e'),
};
export const POSIX_SYSTEM_PKL = hex('800263706f7369780a73797374656d0a7100580a0000006563686f2070776e656471018571025271032e');
export const POSIX_SYSTEM4_PKL = hex('80049525000000000000008c05706f736978948c0673797374656d9493948c0a6563686f2070776e656494859452942e');
export const EVAL_PKL = hex('8002635f5f6275696c74696e5f5f0a6576616c0a71005803000000312b3171018571025271032e');

/*
The generator (python3 gen.py, CPython 3.11; it writes the .pkl files hexed above):

import pickle, sys, types, struct, argparse, collections, io
# Fake torch modules so CPython's own pickler writes the same GLOBALs torch.save writes.
torch = types.ModuleType('torch'); utils = types.ModuleType('torch._utils')
sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils; torch._utils = utils
def _rebuild_tensor_v2(*a): pass
def _rebuild_parameter(*a): pass
_rebuild_tensor_v2.__module__ = 'torch._utils'; _rebuild_parameter.__module__ = 'torch._utils'
utils._rebuild_tensor_v2 = _rebuild_tensor_v2; utils._rebuild_parameter = _rebuild_parameter
class FloatStorage: pass
class LongStorage: pass
FloatStorage.__module__ = 'torch'; LongStorage.__module__ = 'torch'
torch.FloatStorage = FloatStorage; torch.LongStorage = LongStorage
class Storage:
    def __init__(s, cls, key, n): s.cls, s.key, s.n = cls, key, n
class T:
    def __init__(s, st, off, size, stride): s.a = (st, off, size, stride, False, collections.OrderedDict())
    def __reduce_ex__(s, p): return (_rebuild_tensor_v2, s.a)
class P:
    def __init__(s, t): s.t = t
    def __reduce_ex__(s, p): return (_rebuild_parameter, (s.t, True, collections.OrderedDict()))
class Pk(pickle.Pickler):
    def persistent_id(self, o):
        if isinstance(o, Storage): return ('storage', o.cls, o.key, 'cpu', o.n)
        return None
def dumps(o, proto=2):
    b = io.BytesIO(); Pk(b, protocol=proto).dump(o); return b.getvalue()

# A training checkpoint: model, ema, opt, args, step. Storages: 0 = model weights (6 floats),
# 1 = ema weights (6 floats), 2 = exp_avg (6 floats), 3 = a LongStorage (3 longs), 4 = step tensor.
s0, s1, s2, s3, s4 = Storage(FloatStorage,'0',6), Storage(FloatStorage,'1',6), Storage(FloatStorage,'2',6), Storage(LongStorage,'3',3), Storage(FloatStorage,'4',1)
model = collections.OrderedDict([('w', T(s0, 0, (2, 2), (2, 1))), ('b', T(s0, 4, (2,), (1,))), ('idx', T(s3, 0, (3,), (1,)))])
ema = collections.OrderedDict([('w', T(s1, 0, (2, 2), (2, 1))), ('b', T(s1, 4, (2,), (1,))), ('idx', T(s3, 0, (3,), (1,)))])
opt = {'state': {0: {'step': T(s4, 0, (), ()), 'exp_avg': T(s2, 0, (6,), (1,))}}, 'param_groups': [{'lr': 0.0001, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0, 'amsgrad': False, 'params': [0, 1]}]}
args = argparse.Namespace(model='DiT-S/2', image_size=256, num_experts=8, lr=1e-4, rf=False, results_dir=None, tags=['a', 'b'])
train = {'model': model, 'ema': ema, 'opt': opt, 'args': args, 'step': 7, 'loss': 0.25}
open('train.pkl','wb').write(dumps(train))
# A parameter dict (nn.Parameter pickles via _rebuild_parameter), protocol 2.
open('param.pkl','wb').write(dumps(collections.OrderedDict([('w', P(T(s0, 1, (2,), (2,))))])))
# Plain values in every protocol 2..5.
vals = {'a': [1, 2.5, None, True, False, (3, -4)], 'big': 2**70, 'neg': -300, 'i32': -70000, 'u16': 40000, 'b': b'xy', 'u': 'h\u00e9llo \u2603', 'f': -1.5e-300, 'nested': {'k': [[], (), {}]}, 7: 'int key', 'od': collections.OrderedDict(x=1, y=[2]), 'shared': None}
lst = [1, 2]; vals['shared'] = (lst, lst); vals['set'] = {3}; vals['fset'] = frozenset([4])
for p in (2, 3, 4, 5):
    open(f'vals{p}.pkl','wb').write(pickle.dumps(vals, protocol=p))
# Attacks.
import os, builtins
class Evil:
    def __init__(s, f, a): s.f, s.a = f, a
    def __reduce__(s): return (s.f, (s.a,))
open('os_system.pkl','wb').write(pickle.dumps(Evil(os.system, 'echo pwned'), protocol=2))
open('eval.pkl','wb').write(pickle.dumps(Evil(builtins.eval, '1+1'), protocol=2))
open('os_system4.pkl','wb').write(pickle.dumps(Evil(os.system, 'echo pwned'), protocol=4))
for f in ['train','param','vals2','vals3','vals4','vals5','os_system','eval','os_system4']:
    print(f, len(open(f+'.pkl','rb').read()))
*/
