package dev.tessera.models.synth;

/**
 * Router weights ({@code blk.N.ffn_gate_inp.weight}, [numExperts][dim]) with planted inter-layer expert affinity, so
 * expert placement can be evaluated without trained weights (ExFlow, arXiv 2401.08383, measures this affinity in
 * trained models). Layer 0's rows are random. Layer l+1's row for expert perm_l(i) is
 * {@code affinity * row_l(i) + sqrt(1 - affinity^2) * fresh noise}: the same direction as expert i's row at layer l,
 * under a random permutation per layer, so a token that layer l sends to expert i is likely sent to expert
 * perm_l(i) by layer l+1 (the residual stream changes little between layers). Affinity 0 gives independent routers;
 * 1 gives an exact chain. Every row keeps the same expected norm whatever the affinity.
 */
final class PlantedRouters {
    static final float ROUTER_STD = 0.02f;

    private PlantedRouters() {}

    /** routers[l][e * dim + i]: every layer's router, deterministic in seed. */
    static float[][] generate(long seed, int numLayers, int numExperts, int dim, float affinity) {
        if (!(affinity >= 0 && affinity <= 1)) throw new IllegalArgumentException("affinity " + affinity + " is outside 0..1");
        float[][] routers = new float[numLayers][numExperts * dim];
        float[] noise = new float[dim];
        float keep = affinity, fresh = (float) Math.sqrt(1 - (double) affinity * affinity);
        for (int l = 0; l < numLayers; l++) {
            int[] perm = permutation(SynthModel.rowSeed(seed, -2 - l, 0), numExperts);
            for (int i = 0; i < numExperts; i++) {
                SynthModel.gaussianRow(noise, SynthModel.rowSeed(seed, -2 - l, 1 + i), ROUTER_STD, 0f);
                int row = perm[i] * dim;
                for (int d = 0; d < dim; d++)
                    routers[l][row + d] = l == 0 ? noise[d] : keep * routers[l - 1][i * dim + d] + fresh * noise[d];
            }
        }
        return routers;
    }

    /** The permutation layer l applies to layer l-1's experts: its[i] = the expert at l that inherits expert i. */
    static int[] permutation(long state, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        long s = state;
        for (int i = n - 1; i > 0; i--) {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            int j = (int) Long.remainderUnsigned(s, i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
