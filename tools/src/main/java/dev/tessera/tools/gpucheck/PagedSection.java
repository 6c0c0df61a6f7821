package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** stories260K through paged KV caches over shuffled block tables, against private caches and the CPU paged store; and the errors the device must refuse. */
final class PagedSection extends CheckSection {
    PagedSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "paged";
    }

    /**
     * Three stories260K sequences through PagedKvCaches over one shared store (block ids shuffled and dealt out
     * round-robin, so tables are neither the identity nor contiguous): a mixed prefill batch, batched decode steps,
     * then single-sequence steps (recorded and replayed as a graph) whose table grows across block boundaries. Logits
     * must match private caches on the same device, and the CPU backend's paged store of the same type.
     */
    @Override
    void run() throws IOException {
        Path file = modelsDir.resolve("stories260K.gguf");
        int[] promptLengths = {20, 7, 33};
        int numSeqs = promptLengths.length, numBlocks = 24;
        SplittableRandom random = new SplittableRandom(11);
        int[][] prompts = new int[numSeqs][];
        for (int s = 0; s < numSeqs; s++) {
            prompts[s] = new int[promptLengths[s]];
            prompts[s][0] = 1;
            for (int i = 1; i < promptLengths[s]; i++) prompts[s][i] = 3 + random.nextInt(500);
        }
        int[] shuffled = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) shuffled[i] = i;
        for (int i = numBlocks - 1; i > 0; i--) { int j = random.nextInt(i + 1), t = shuffled[i]; shuffled[i] = shuffled[j]; shuffled[j] = t; }
        int[][] tables = new int[numSeqs][numBlocks / numSeqs];
        for (int i = 0; i < numBlocks; i++) tables[i % numSeqs][i / numSeqs] = shuffled[i];
        log("paged: block tables %s", Arrays.deepToString(tables));

        List<int[]> feed = new ArrayList<>();
        List<float[]> privateLogits;
        String deviceName;
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 64, numSeqs)) {
            deviceName = m.model().backend().name();
            KvCache[] caches = new KvCache[numSeqs];
            try {
                for (int s = 0; s < numSeqs; s++) caches[s] = m.model().newKvCache(128);
                privateLogits = runSequences(m.model(), caches, null, prompts, feed, true);
            } finally {
                for (KvCache c : caches) if (c != null) c.close();
            }
        }
        for (KvCacheType type : KvCacheType.values()) {
            List<float[]> device = pagedRun(deviceBackend(), file, type, numBlocks, tables, prompts, feed);
            List<float[]> cpu = pagedRun(new CpuBackend(numThreads), file, type, numBlocks, tables, prompts, feed);
            double[] vsCpu = compareSteps(cpu, device), vsPrivate = compareSteps(privateLogits, device);
            // Same device: F32 blocks must give what private caches give (attention's 1e-3); F16 blocks round K and V
            // (2e-2, the F16 matmul tolerance). Against the CPU, whole-model logits after 27 steps differ by summation
            // order, and an F16 store can round a key differently by one ulp: the F16 tolerance for both.
            double tolerance = 2e-2, privateTolerance = type == KvCacheType.F32 ? 1e-3 : 2e-2;
            String what = numSeqs + " seqs, " + device.size() + " steps";
            addParityRow("paged " + type + " vs private caches (" + what + ")", vsPrivate, privateTolerance);
            addParityRow("paged " + type + " vs CPU paged " + type, vsCpu, tolerance);
        }
        if (cpuOnly) {
            report.row("paged", "errors (block size, position past table, closed store)", "CPU backend (dry run)", "SKIP");
            return;
        }
        pagedErrors(file);
        log("paged: on %s", deviceName);
    }

    private void addParityRow(String name, double[] err, double tolerance) {
        boolean ok = err[1] <= tolerance;
        String value = String.format(Locale.ROOT, "abs %.2e  rel %.2e  (tol %.0e)", err[0], err[1], tolerance);
        log("paged %-50s %s %s", name, value, ok ? "ok" : "FAIL");
        report.row("paged", name, value, ok ? "ok" : "FAIL");
    }

    private List<float[]> pagedRun(Backend backend, Path file, KvCacheType type, int numBlocks, int[][] tables, int[][] prompts, List<int[]> feed) {
        try (LoadedModel m = ModelLoader.load(file, backend, 64, prompts.length)) {
            var c = m.config();
            try (KvBlockStore store = backend.allocateKvBlocks(c.numLayers(), c.numKvHeads(), c.headDim(), 16, numBlocks, type)) {
                KvCache[] caches = new KvCache[prompts.length];
                for (int s = 0; s < prompts.length; s++) caches[s] = new PagedKvCache(store);
                return runSequences(m.model(), caches, tables, prompts, feed, false);
            }
        }
    }

    /**
     * A mixed prefill of every prompt, 6 batched decode steps, then 20 steps of sequence 0 alone; returns each
     * forward's logits. Tokens after the prompts are the greedy picks when {@code record} (stored in feed), else
     * taken from feed, so every run sees the same inputs. Paged caches get as many blocks of their table as needed.
     */
    private static List<float[]> runSequences(LlamaModel model, KvCache[] caches, int[][] tables, int[][] prompts, List<int[]> feed, boolean record) {
        int numSeqs = prompts.length, vocab = model.config().vocabSize();
        List<float[]> out = new ArrayList<>();
        int[] pos = new int[numSeqs];
        int total = 0;
        for (int[] p : prompts) total += p.length;
        int[] tokens = new int[total], positions = new int[total], lastRows = new int[numSeqs];
        KvCache[] owners = new KvCache[total];
        int row = 0;
        for (int s = 0; s < numSeqs; s++) {
            for (int i = 0; i < prompts[s].length; i++, row++) { tokens[row] = prompts[s][i]; positions[row] = i; owners[row] = caches[s]; }
            lastRows[s] = row - 1;
            pos[s] = prompts[s].length;
            reserve(caches[s], tables == null ? null : tables[s], pos[s] - 1);
        }
        float[] logits = new float[numSeqs * vocab];
        model.forward(tokens, new AttentionBatch(total, positions, owners), lastRows, logits);
        out.add(logits.clone());
        int step = 0;
        int[] all = new int[numSeqs];
        for (int s = 0; s < numSeqs; s++) all[s] = s;
        for (int i = 0; i < 6; i++, step++) {
            int[] next = new int[numSeqs];
            for (int s = 0; s < numSeqs; s++) next[s] = CheckSetup.argmax(logits, s * vocab, vocab);
            if (record) feed.add(next); else next = feed.get(step);
            int[] at = pos.clone();
            for (int s = 0; s < numSeqs; s++) reserve(caches[s], tables == null ? null : tables[s], at[s]);
            model.forward(next, new AttentionBatch(numSeqs, at, caches.clone()), all, logits);
            out.add(logits.clone());
            for (int s = 0; s < numSeqs; s++) pos[s]++;
        }
        float[] one = new float[vocab];
        System.arraycopy(logits, 0, one, 0, vocab);
        for (int i = 0; i < 20; i++, step++) {
            int[] next = {CheckSetup.argmax(one, 0, vocab)};
            if (record) feed.add(next); else next = feed.get(step);
            reserve(caches[0], tables == null ? null : tables[0], pos[0]);
            model.forward(next, AttentionBatch.single(caches[0], pos[0], 1), new int[] {0}, one);
            out.add(one.clone());
            pos[0]++;
        }
        return out;
    }

    /** Gives a paged cache the blocks of its table up to the one holding {@code position}. */
    private static void reserve(KvCache cache, int[] table, int position) {
        if (!(cache instanceof PagedKvCache p)) return;
        int needed = position / p.store().blockSize() + 1;
        if (p.numBlocks() < needed) p.setBlocks(table, needed);
    }

    /** Worst {abs, rel} over the steps (rel against each step's largest reference logit). */
    private static double[] compareSteps(List<float[]> expected, List<float[]> got) {
        if (expected.size() != got.size()) throw new IllegalStateException(expected.size() + " reference steps, " + got.size() + " measured");
        double abs = 0, rel = 0;
        for (int i = 0; i < expected.size(); i++) {
            float[] e = expected.get(i), g = got.get(i);
            double maxAbs = 0, maxRef = 0;
            for (int j = 0; j < e.length; j++) {
                double d = Math.abs(e[j] - g[j]);
                if (!(d <= maxAbs)) maxAbs = d;
                maxRef = Math.max(maxRef, Math.abs(e[j]));
            }
            if (!(maxAbs <= abs)) abs = maxAbs;
            double r = maxAbs / Math.max(maxRef, 1e-30);
            if (!(r <= rel)) rel = r;
        }
        return new double[] {abs, rel};
    }

    /** What the device must refuse cleanly: a block size it has no kernels for, a position past the table, a closed store. */
    private void pagedErrors(Path file) {
        List<String> failures = new ArrayList<>();
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 64, 1)) {
            var c = m.config();
            Backend b = m.model().backend();
            expect(failures, "block size 32", IllegalArgumentException.class,
                    () -> b.allocateKvBlocks(c.numLayers(), c.numKvHeads(), c.headDim(), 32, 4, KvCacheType.F32).close());
            KvBlockStore store = b.allocateKvBlocks(c.numLayers(), c.numKvHeads(), c.headDim(), 16, 4, KvCacheType.F32);
            PagedKvCache cache = paged(store, new int[] {2}, 1);
            float[] logits = new float[c.vocabSize()];
            m.model().forward(new int[] {1}, AttentionBatch.single(cache, 0, 1), new int[] {0}, logits);
            expect(failures, "position 16 with one block", IllegalStateException.class,
                    () -> m.model().forward(new int[] {1}, AttentionBatch.single(cache, 16, 1), new int[] {0}, logits));
            // The backend must still work after the refused step.
            m.model().forward(new int[] {1}, AttentionBatch.single(cache, 1, 1), new int[] {0}, logits);
            store.close();
            expect(failures, "closed store", IllegalStateException.class,
                    () -> m.model().forward(new int[] {1}, AttentionBatch.single(cache, 2, 1), new int[] {0}, logits));
        }
        report.row("paged", "errors (block size, position past table, closed store)",
                failures.isEmpty() ? "each refused with a clear exception" : String.join("; ", failures), failures.isEmpty() ? "ok" : "FAIL");
    }

    private static void expect(List<String> failures, String what, Class<? extends Throwable> type, Runnable body) {
        try {
            body.run();
            failures.add(what + ": no exception");
        } catch (Throwable e) {
            log("paged: %s -> %s", what, e);
            if (!type.isInstance(e)) failures.add(what + ": " + e);
        }
    }


    private static PagedKvCache paged(KvBlockStore store, int[] ids, int n) {
        PagedKvCache cache = new PagedKvCache(store);
        cache.setBlocks(ids, n);
        return cache;
    }
}
