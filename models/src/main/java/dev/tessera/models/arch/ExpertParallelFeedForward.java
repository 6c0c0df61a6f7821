package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;
import dev.tessera.kernels.collective.Collective;

import java.util.Arrays;
import java.util.Locale;

/**
 * A mixture-of-experts block on one device of an expert-parallel group: each device holds the experts
 * {@code deviceOfExpert[layer][expert]} gives it, and tokens meet their experts through the group's collective. The
 * arithmetic per token is {@link MoeFeedForward}'s (same routing, same grouped matmul per expert, the slots combined in
 * slot order), so greedy output does not depend on how experts are spread.
 * <ul>
 *   <li>{@link Mode#TWO_ALL_TO_ALL}, the usual expert parallelism (DeepSpeed-MoE): attention is data-parallel, each
 *   device routes its own sequences' tokens, a dispatch all-to-all sends each slot's input row to its expert's device,
 *   and a combine all-to-all brings the outputs home.</li>
 *   <li>{@link Mode#COHERENT}, ExFlow's context-coherent expert parallelism: every device holds every sequence's context
 *   (its tokens and KV) and runs the layer for every token, so the router's choices are known everywhere and no
 *   dispatch is needed: each device computes its experts' slots and one exchange per layer (an all-gather of slot
 *   outputs) hands every device the results.</li>
 * </ul>
 */
public final class ExpertParallelFeedForward implements FeedForward {

    /** How tokens reach their experts; {@link #flag} is how {@code --expert-mode} spells it. */
    public enum Mode {
        COHERENT("coherent"), TWO_ALL_TO_ALL("baseline");

        public final String flag;

        Mode(String flag) { this.flag = flag; }

        public static Mode parse(String s) {
            for (Mode m : values()) if (m.flag.equals(s.trim().toLowerCase(Locale.ROOT))) return m;
            throw new IllegalArgumentException("unknown expert-parallel mode '" + s + "', expected coherent|baseline");
        }
    }

    private final ModelConfig config;
    private final Backend backend;
    private final Collective group;
    private final int[][] deviceOfExpert;
    private final Mode mode;
    private final int dim, k;
    private final ExpertRouting routing;      // this device's tokens, k slots each
    private final ExpertRouting local;        // rows this device computes, one expert each
    private final Activations routerLogits, slots, rowsIn, rowsOut, hb, hb2, dispatch, dispatched;
    private final ExpertCombine combine;
    private final float[] inputs, slotRows, rows, packed;
    private final int[] experts, slotOf;  // per row this device computes or dispatches: its expert, its slot t * k + s
    private final int[] sendCounts, recvCounts, backCounts;  // per device, for the baseline's all-to-alls
    private final float[] ones;
    private final DenseFeedForward dense;  // DeepSeek's leading dense layers: every device holds them and runs its own rows

    /**
     * @param maxBatchTokens the most rows of a whole step (every device's together): a device may compute experts for
     *                       all of them
     */
    public ExpertParallelFeedForward(ModelConfig config, Backend backend, int maxBatchTokens, Collective group, int[][] deviceOfExpert, Mode mode) {
        if (!config.isMoe()) throw new IllegalArgumentException("expert parallelism needs a mixture-of-experts model");
        if (deviceOfExpert.length != config.numLayers()) throw new IllegalArgumentException("placement for " + deviceOfExpert.length + " layers, model has " + config.numLayers());
        MoeConfig m = config.moe();
        for (int[] layer : deviceOfExpert) {
            if (layer.length != m.numExperts()) throw new IllegalArgumentException("placement for " + layer.length + " experts per layer, model has " + m.numExperts());
            for (int d : layer) if (d < 0 || d >= group.size()) throw new IllegalArgumentException("placement names device " + d + " in a group of " + group.size());
        }
        this.config = config;
        this.backend = backend;
        this.group = group;
        this.deviceOfExpert = deviceOfExpert;
        this.mode = mode;
        this.dim = config.dim();
        this.k = m.numExpertsUsed();
        int maxSlots = maxBatchTokens * k;
        routing = new ExpertRouting(maxBatchTokens, m.numExperts(), k, m.normalize(), m.weightsScale());
        local = new ExpertRouting(maxSlots, m.numExperts(), 1, false, 0f);
        routerLogits = backend.allocate(maxBatchTokens, m.numExperts());
        slots = backend.allocate(maxSlots, dim);
        rowsIn = backend.allocate(maxSlots, dim);
        rowsOut = backend.allocate(maxSlots, dim);
        hb = backend.allocate(maxSlots, m.expertHiddenDim());
        hb2 = backend.allocate(maxSlots, m.expertHiddenDim());
        // A dispatched row carries its expert id in one extra column (exact in a float below 2^24).
        dispatch = mode == Mode.TWO_ALL_TO_ALL ? backend.allocate(maxSlots, dim + 1) : null;
        dispatched = mode == Mode.TWO_ALL_TO_ALL ? backend.allocate(maxSlots, dim + 1) : null;
        combine = new ExpertCombine(config, backend, maxBatchTokens);
        inputs = new float[maxBatchTokens * dim];
        slotRows = new float[maxSlots * dim];
        rows = new float[maxSlots * dim];
        packed = new float[maxSlots * (dim + 1)];
        experts = new int[maxSlots];
        slotOf = new int[maxSlots];
        sendCounts = new int[group.size()];
        recvCounts = new int[group.size()];
        backCounts = new int[group.size()];
        ones = new float[maxSlots];
        Arrays.fill(ones, 1f);
        dense = m.leadingDenseLayers() > 0 ? new DenseFeedForward(config, config.hiddenDim(), backend, maxBatchTokens) : null;
    }

    public Mode mode() { return mode; }

    @Override public boolean recordable() { return false; }

    @Override public boolean takesPartWhenIdle() { return mode == Mode.TWO_ALL_TO_ALL; }

    @Override
    public void forward(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n) {
        MoeWeights e = w.moe();
        if (e == null) {
            if (n > 0) dense.forward(layer, w, x, xb, n);
            return;
        }
        int[] owner = deviceOfExpert[layer];
        int me = group.rank();
        if (n > 0) {
            backend.rmsNorm(x, w.ffnNorm(), config.rmsNormEps(), n, xb);
            backend.matmul(e.router(), xb, n, routerLogits);
            backend.routeExperts(routerLogits, n, routing);
            backend.download(xb, inputs, n);
        } else {
            routing.set(0, experts, ones);
        }
        if (mode == Mode.COHERENT) {
            // Every device routed the same tokens the same way: each computes its own experts' slots, and one exchange
            // (a sum over a zero-filled slot matrix: x + 0 is exact) gives every device every slot.
            int count = 0;
            for (int t = 0; t < n; t++)
                for (int s = 0; s < k; s++) {
                    int ex = routing.expert(t, s);
                    if (owner[ex] != me) continue;
                    System.arraycopy(inputs, t * dim, rows, count * dim, dim);
                    experts[count] = ex;
                    slotOf[count++] = t * k + s;
                }
            compute(e, count);
            Arrays.fill(slotRows, 0, n * k * dim, 0f);
            for (int i = 0; i < count; i++) System.arraycopy(rows, i * dim, slotRows, slotOf[i] * dim, dim);
            backend.upload(slotRows, slots, n * k);
            group.allReduce(slots, n * k);
        } else {
            dispatchAndCombine(e, owner, n);
        }
        if (n > 0) combine.addTo(x, xb, slots, routing, e, n);
    }

    /**
     * The two all-to-alls: each slot's input row (with its expert id) goes to its expert's device, grouped by device in
     * rank order and by slot within one; the device computes what it received; the outputs go back the same way.
     */
    private void dispatchAndCombine(MoeWeights e, int[] owner, int n) {
        int size = group.size(), at = 0;
        int[] send = sendCounts, recv = recvCounts, order = slotOf;
        Arrays.fill(send, 0);
        for (int d = 0; d < size; d++) {
            for (int t = 0; t < n; t++)
                for (int s = 0; s < k; s++) {
                    int ex = routing.expert(t, s);
                    if (owner[ex] != d) continue;
                    System.arraycopy(inputs, t * dim, packed, at * (dim + 1), dim);
                    packed[at * (dim + 1) + dim] = ex;
                    order[at++] = t * k + s;
                    send[d]++;
                }
        }
        if (at > 0) backend.upload(packed, dispatch, at);
        int received = group.allToAll(dispatch, send, dispatched, recv);
        if (received > 0) backend.download(dispatched, packed, received);
        int numExperts = routing.numExperts();
        for (int i = 0; i < received; i++) {
            System.arraycopy(packed, i * (dim + 1), rows, i * dim, dim);
            float id = packed[i * (dim + 1) + dim];
            int ex = (int) id;
            if (ex != id || ex < 0 || ex >= numExperts || e.gate()[ex] == null)
                throw new IllegalStateException("a peer sent a row for expert " + id + ", which this device does not hold");
            experts[i] = ex;
        }
        compute(e, received);
        if (received > 0) backend.upload(rows, rowsOut, received);
        int back = group.allToAll(rowsOut, recv, slots, backCounts);
        if (back != at) throw new IllegalStateException("combine returned " + back + " rows for " + at + " dispatched");
        if (at == 0) return;
        // Outputs return in dispatch order; put each at its slot.
        backend.download(slots, rows, at);
        for (int i = 0; i < at; i++) System.arraycopy(rows, i * dim, slotRows, order[i] * dim, dim);
        backend.upload(slotRows, slots, n * k);
    }

    /** rows[0..count) := expert experts[i]'s SwiGLU of rows[i], in place, by the grouped matmul. */
    private void compute(MoeWeights e, int count) {
        if (count == 0) return;
        local.set(count, experts, ones);
        backend.upload(rows, rowsIn, count);
        backend.matmulExpertsGateUp(e.gate(), e.up(), rowsIn, local, hb, hb2);
        backend.swiglu(hb, hb2, count);
        backend.matmulExperts(e.down(), hb, true, local, rowsOut);
        backend.download(rowsOut, rows, count);
    }
}
