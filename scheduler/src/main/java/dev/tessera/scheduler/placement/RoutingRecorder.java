package dev.tessera.scheduler.placement;

import dev.tessera.kernels.ExpertRouting;
import dev.tessera.models.arch.RoutingObserver;

import java.util.ArrayList;
import java.util.List;

/**
 * Collects a {@link RoutingTrace} from a running model: each step's routing arrives layer by layer
 * ({@link RoutingObserver}); {@link #endStep} files the step's tokens under their sequence and position. A model whose
 * first layers are dense (DeepSeek-MoE) routes from layer {@code firstLayer} on, and the trace's layer 0 is that one.
 */
public final class RoutingRecorder implements RoutingObserver {
    private final String model;
    private final int numLayers, numExperts, topK, firstLayer;
    private final List<int[]> rows = new ArrayList<>();
    private final List<int[]> ids = new ArrayList<>();
    private int[][] step = new int[0][];  // [token of the step][layer * topK + slot]
    private int stepTokens;

    /** @param numLayers the layers that route: the model's from {@code firstLayer} on */
    public RoutingRecorder(String model, int numLayers, int numExperts, int topK, int firstLayer) {
        this.model = model;
        this.numLayers = numLayers;
        this.numExperts = numExperts;
        this.topK = topK;
        this.firstLayer = firstLayer;
    }

    @Override
    public void routed(int modelLayer, ExpertRouting routing) {
        int n = routing.numTokens(), layer = modelLayer - firstLayer;
        if (layer < 0) return;
        if (layer == 0) {
            stepTokens = n;
            if (step.length < n) step = new int[n][];
            for (int t = 0; t < n; t++) step[t] = new int[numLayers * topK];
        }
        if (n != stepTokens) throw new IllegalStateException("layer " + layer + " routed " + n + " tokens, layer 0 routed " + stepTokens);
        for (int t = 0; t < n; t++) for (int s = 0; s < topK; s++) step[t][layer * topK + s] = routing.expert(t, s);
    }

    /** Files the last step's tokens: token t of the step is {@code sequence} at {@code firstPosition + t}. */
    public void endStep(int sequence, int firstPosition) {
        for (int t = 0; t < stepTokens; t++) {
            rows.add(new int[] {sequence, firstPosition + t});
            ids.add(step[t]);
        }
        stepTokens = 0;
    }

    public RoutingTrace trace() {
        int n = rows.size();
        int[] seq = new int[n], pos = new int[n];
        for (int i = 0; i < n; i++) { seq[i] = rows.get(i)[0]; pos[i] = rows.get(i)[1]; }
        return new RoutingTrace(model, numLayers, numExperts, topK, seq, pos, ids.toArray(new int[0][]));
    }
}
