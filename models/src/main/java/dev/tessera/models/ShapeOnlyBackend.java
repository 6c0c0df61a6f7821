package dev.tessera.models;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.MemorySegment;

/** Accepts weights without touching their bytes, so a file can be validated without allocating compute. */
final class ShapeOnlyBackend implements Backend {
    private record ShapeWeight(String name, TensorType type, int rows, int cols) implements Weight {}

    @Override public String name() { return "shape-check"; }
    @Override public Weight weight(String name, TensorType type, MemorySegment data, int rows, int cols) { return new ShapeWeight(name, type, rows, cols); }
    @Override public Activations allocate(int maxTokens, int width) { throw new UnsupportedOperationException(); }
    @Override public KvCache allocateKvCache(int numLayers, int numKvHeads, int headDim, int capacity) { throw new UnsupportedOperationException(); }
    @Override public dev.tessera.kernels.KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, dev.tessera.kernels.KvCacheType type) { throw new UnsupportedOperationException(); }
    @Override public void upload(float[] src, Activations dst, int numTokens) { throw new UnsupportedOperationException(); }
    @Override public void download(Activations src, float[] dst, int numTokens) { throw new UnsupportedOperationException(); }
    @Override public void embed(Weight table, int[] tokens, int numTokens, Activations out) { throw new UnsupportedOperationException(); }
    @Override public void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out) { throw new UnsupportedOperationException(); }
    @Override public void rmsNormHeads(Activations x, Weight gamma, float eps, int numTokens, int numHeads) { throw new UnsupportedOperationException(); }
    @Override public void matmul(Weight w, Activations x, int numTokens, Activations out) { throw new UnsupportedOperationException(); }
    @Override public void addBias(Activations x, Weight bias, int numTokens) { throw new UnsupportedOperationException(); }
    @Override public void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) { throw new UnsupportedOperationException(); }
    @Override public void swiglu(Activations gate, Activations up, int numTokens) { throw new UnsupportedOperationException(); }
    @Override public void add(Activations acc, Activations x, int numTokens) { throw new UnsupportedOperationException(); }
    @Override public void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch, int numHeads, int numKvHeads, int headDim, Activations out) { throw new UnsupportedOperationException(); }
    @Override public boolean supportsExperts(TensorType type) { return type.computable(); }
    @Override public void close() {}
}
