/**
 * Parity stage "torch.load" (fixtures reference/torchload/*): every output key of case.json is the dotted name
 * of a tensor inside weights.pt; the value must equal the stored one exactly. The reference gives float16 /
 * bfloat16 / float64 tensors as float32, so those are converted to the reference dtype here (exact for f16/bf16;
 * f64 -> f32 is PyTorch's rounding).
 */
import { join } from 'node:path';
import { loadTorchCheckpoint } from '../../convert/torch.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { registerStage } from '../parity.js';

registerStage('torch.load', async (c) => {
  if (!c.json.weights) throw new Error(`${c.name}: torch.load case without weights`);
  const ckpt = await loadTorchCheckpoint(join(c.dir, c.json.weights));
  try {
    const out: Record<string, HostTensor> = {};
    for (const [name, tname] of Object.entries(c.json.outputs)) {
      const got = await ckpt.read(name);
      const ref = c.t(tname);
      out[tname] = ref.dtype === 'float32' && got.dtype !== 'float32'
        ? { dtype: 'float32', shape: got.shape, data: toFloat32(got) }
        : got;
    }
    return out;
  } finally {
    await ckpt.close();
  }
});
