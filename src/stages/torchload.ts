/**
 * Parity stage "torch.load" (fixtures reference/torchload/*): every output key of case.json is the dotted name
 * of a tensor inside weights.pt; the value must equal the stored one exactly. The reference gives float16 /
 * bfloat16 / float64 tensors as float32, so those are converted to the reference dtype here (exact for f16/bf16;
 * f64 -> f32 is PyTorch's rounding). The config lists non-tensor entries of the container (a dotted field path →
 * its value; `non_tensor_leaves` groups several): each must read back equal.
 */
import { loadTorchCheckpoint } from '../../convert/torch.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import { registerStage } from '../parity.js';

registerStage('torch.load', async (c) => {
  const ckpt = await loadTorchCheckpoint(c.weightsFile());
  try {
    const fields: Array<[string, unknown]> = [];
    for (const [k, v] of Object.entries(c.json.config ?? {})) {
      if (k === 'non_tensor_leaves') for (const f of Object.keys(v as Record<string, unknown>)) fields.push([f, (c.config[k] as Record<string, unknown>)[f]]);
      else fields.push([k, c.config[k]]);
    }
    for (const [path, want] of fields) {
      const got = ckpt.field(path);
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`config: field ${path} of weights.pt is ${JSON.stringify(got)}, the case says ${JSON.stringify(want)}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, tname] of Object.entries(c.json.outputs)) {
      const got = await ckpt.read(name);
      const ref = c.t(tname);
      out[name] = ref.dtype === 'float32' && got.dtype !== 'float32'
        ? { dtype: 'float32', shape: got.shape, data: toFloat32(got) }
        : got;
    }
    return out;
  } finally {
    await ckpt.close();
  }
});
