import { LoadFailedError } from "../errors.ts";
import type { GpuFit } from "./fit.ts";

/**
 * A load refused before anything was spawned: the model does not fit in the GPU memory that
 * is free. Carries the numbers per GPU; `force` loads anyway. It is a {@link LoadFailedError}
 * (code LOAD_FAILED), so every front-end that explains a failed load explains this one.
 * @example
 * if (e instanceof DoesNotFitError) console.error(e.fit.map((g) => `GPU ${g.gpu}: ${g.need_mib}/${g.free_mib} MiB`))
 */
export class DoesNotFitError extends LoadFailedError {
  /** each GPU of the set: what it needs and what it has free */
  readonly fit: readonly GpuFit[];
  /** the sentence with the numbers, without the "loading … failed" around it */
  readonly detail: string;
  constructor(init: { slot: string; modelId: string; detail: string; fit: readonly GpuFit[] }) {
    super({ slot: init.slot, modelId: init.modelId, reason: `${init.detail} (force loads anyway)` });
    this.fit = init.fit;
    this.detail = init.detail;
  }
}
