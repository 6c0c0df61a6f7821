package dev.tessera.scheduler.placement;

/**
 * Cross-device hops per token-layer of a placement on a trace, ExFlow's measure: at each boundary between layers l and
 * l+1, a token's hidden state is on the device of its first-choice expert at l and goes to the device of each of its
 * top-k experts at l+1; each one elsewhere is a hop, costing 1 within a node and {@link #INTER_NODE} across nodes.
 * The sum is divided by tokens * (layers - 1).
 */
public final class HopCost {
    /** An inter-node hop costs twice an intra-node one (the model of network against NVLink/PCIe). */
    public static final int INTER_NODE = 2;

    private HopCost() {}

    public static int cost(Placement p, int fromDevice, int toDevice) {
        if (fromDevice == toDevice) return 0;
        return p.node(fromDevice) == p.node(toDevice) ? 1 : INTER_NODE;
    }

    public static double perTokenLayer(Placement p, RoutingTrace trace) {
        if (p.numLayers() != trace.numLayers() || p.numExperts() != trace.numExperts())
            throw new IllegalArgumentException("placement for " + p.numLayers() + " layers x " + p.numExperts() + " experts, trace has "
                    + trace.numLayers() + " x " + trace.numExperts());
        if (trace.numTokens() == 0 || trace.numLayers() < 2) return 0;
        long hops = 0;
        for (int t = 0; t < trace.numTokens(); t++)
            for (int l = 0; l + 1 < trace.numLayers(); l++) {
                int home = p.device()[l][trace.expert(t, l, 0)];
                for (int s = 0; s < trace.topK(); s++) hops += cost(p, home, p.device()[l + 1][trace.expert(t, l + 1, s)]);
            }
        return (double) hops / ((long) trace.numTokens() * (trace.numLayers() - 1));
    }
}
