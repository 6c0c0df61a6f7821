package dev.tessera.models.arch;

import dev.tessera.kernels.ExpertRouting;

/** Sees each MoE layer's routing of a step as it happens (routing traces: {@code tessera trace-routing}). */
@FunctionalInterface
public interface RoutingObserver {
    /** Called once per layer per step, after routing; {@code routing} is only valid during the call. */
    void routed(int layer, ExpertRouting routing);
}
