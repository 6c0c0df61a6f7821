package dev.tessera.serving.cli;

import dev.tessera.bindings.LibraryUnavailableException;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.DeviceSelector;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.SingleRequest;
import dev.tessera.models.quant.Quantizer;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The GPU host check, run by {@code scripts/gpu-check.sh} from the bundle: device facts, op-by-op parity of the CUDA
 * backend against the CPU backend, stories260K greedy ids against the reference, llama-1b decode and prefill
 * throughput at batch 1 and 16, the device-to-device copy roofline, and a PyTorch peer. Every section catches its own
 * failure and the run goes on, so one (scarce) GPU session yields as much as it can; one summary table ends stdout.
 * {@code --cpu-only} runs the same logic against a second CPU backend with tiny models, so it can be exercised
 * without a GPU. A plain main class, not a {@code tessera} subcommand.
 */
public final class GpuCheck {
    static final List<String> SECTIONS = List.of("device", "parity", "stories", "paged", "engine", "decode", "bandwidth", "torch");
    static final List<TensorType> MATMUL_TYPES = List.of(TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0,
            TensorType.Q4_0, TensorType.Q4_K, TensorType.Q6_K);

    /** One line of the summary table. */
    record Row(String section, String item, String value, String status) {}

    private final List<Row> rows = new ArrayList<>();
    private final boolean quick;
    private final boolean cpuOnly;
    private final Set<String> sections;
    private final Path modelsDir;
    private final Path workDir;
    private final int numThreads;
    private final String device;
    private final Path torchScript;
    // Shared between sections: decode of F16 llama-1b at batch 1 over the copy roofline.
    private double f16DecodeTokensPerS = Double.NaN;
    private long f16BytesPerToken;
    private double copyBandwidthBytesPerS = Double.NaN;

    GpuCheck(List<String> argv) {
        CliArgs args = new CliArgs(argv, Set.of("sections", "models", "work-dir", "threads", "device", "torch-script"), Set.of("quick", "cpu-only"));
        quick = args.has("quick");
        cpuOnly = args.has("cpu-only");
        sections = new LinkedHashSet<>();
        for (String s : args.get("sections", String.join(",", SECTIONS)).split(",")) {
            if (s.isBlank()) continue;
            if (!SECTIONS.contains(s.trim())) throw new CliArgs.UsageException("--sections takes " + String.join(",", SECTIONS) + "; got '" + s + "'");
            sections.add(s.trim());
        }
        modelsDir = Path.of(args.get("models", defaultModelsDir()));
        workDir = Path.of(args.get("work-dir", System.getProperty("java.io.tmpdir") + "/tessera-gpu-check"));
        numThreads = args.getInt("threads", defaultThreads(), 1, 1024);
        device = args.get("device", "cuda");
        torchScript = Path.of(args.get("torch-script", System.getProperty("tessera.home", ".") + "/scripts/gpu-torch-peer.py"));
    }

    public static void main(String[] argv) {
        if (Arrays.asList(argv).contains("--help")) {
            System.out.println(usage());
            return;
        }
        GpuCheck check;
        try {
            check = new GpuCheck(Arrays.asList(argv));
        } catch (CliArgs.UsageException e) {
            System.err.println("gpu-check: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(check.run());
    }

    static String usage() {
        return """
                usage: GpuCheck [--quick] [--cpu-only] [--sections LIST] [--models DIR] [--work-dir DIR] [--threads N]
                                [--device cuda|cuda:N] [--torch-script FILE]

                  --sections LIST   comma-separated subset of device,parity,stories,paged,engine,decode,bandwidth,torch (default all)
                  --quick           llama-1b in F16 only, fewer steps, a 256 MiB copy probe
                  --cpu-only        dry run: a second CPU backend stands in for CUDA, tiny synthetic models
                  --models DIR      folder with stories260K.gguf, its reference JSON and llama.cpp-vocab/
                  --work-dir DIR    where synthetic models are written and reused (default $TMPDIR/tessera-gpu-check)""";
    }

    int run() {
        long t0 = System.nanoTime();
        log("gpu-check: %s, sections %s%s, models %s, %d CPU threads", cpuOnly ? "CPU-only dry run" : "device " + device,
                String.join(",", sections), quick ? " (quick)" : "", modelsDir, numThreads);
        section("device", this::deviceInfo);
        section("parity", this::parity);
        section("stories", this::stories);
        section("paged", this::paged);
        section("engine", this::engine);
        section("decode", this::decode);
        section("bandwidth", this::bandwidth);
        section("torch", this::torchPeer);
        rows.add(new Row("total", "wall time", String.format(Locale.ROOT, "%.1f s", (System.nanoTime() - t0) / 1e9), ""));
        printSummary();
        return rows.stream().anyMatch(r -> r.status().equals("FAIL")) ? 1 : 0;
    }

    interface Section { void run() throws Exception; }

    private void section(String name, Section body) {
        if (!sections.contains(name)) return;
        long t0 = System.nanoTime();
        log("== %s ==", name);
        try {
            body.run();
        } catch (Throwable e) {
            String message = e.getClass().getSimpleName() + ": " + e.getMessage();
            log("gpu-check: section %s failed: %s", name, message);
            StackTraceElement[] trace = e.getStackTrace();
            for (int i = 0; i < Math.min(6, trace.length); i++) log("    at %s", trace[i]);
            rows.add(new Row(name, "section", oneLine(message), "FAIL"));
        }
        log("   (%s took %.1f s)", name, (System.nanoTime() - t0) / 1e9);
    }

    // ---------------------------------------------------------------- (a) device

    private void deviceInfo() {
        if (cpuOnly) {
            rows.add(new Row("device", "device", "CPU only (dry run), " + Runtime.getRuntime().availableProcessors() + " cores", "SKIP"));
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            check(cuda_h.cuInit(0), "cuInit");
            MemorySegment i = arena.allocate(cuda_h.C_INT);
            check(cuda_h.cuDriverGetVersion(i), "cuDriverGetVersion");
            int version = i.get(cuda_h.C_INT, 0);
            check(cuda_h.cuDeviceGetCount(i), "cuDeviceGetCount");
            int count = i.get(cuda_h.C_INT, 0);
            int ordinal = DeviceSelector.parse(device).index();
            check(cuda_h.cuDeviceGet(i, ordinal), "cuDeviceGet");
            int dev = i.get(cuda_h.C_INT, 0);
            MemorySegment name = arena.allocate(256);
            check(cuda_h.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
            MemorySegment bytes = arena.allocate(cuda_h.C_LONG);
            check(cuda_h.cuDeviceTotalMem_v2(bytes, dev), "cuDeviceTotalMem");
            int major = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            int minor = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            int sms = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
            int clockKhz = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_CLOCK_RATE, dev);
            int memClockKhz = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, dev);
            int busBits = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, dev);
            int l2 = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev);
            // Double data rate: two transfers per memory clock over the whole bus.
            double peak = 2.0 * memClockKhz * 1e3 * busBits / 8;
            String deviceName = name.getString(0);
            log("device %d of %d: %s, sm_%d%d, %d SMs at %d MHz, %.1f GiB, %d-bit bus at %d MHz (peak %.0f GB/s), L2 %d MiB, driver %d.%d",
                    ordinal, count, deviceName, major, minor, sms, clockKhz / 1000, bytes.get(cuda_h.C_LONG, 0) / (double) (1L << 30),
                    busBits, memClockKhz / 1000, peak / 1e9, l2 >> 20, version / 1000, version % 1000 / 10);
            rows.add(new Row("device", "name", deviceName + " (sm_" + major + minor + ", " + sms + " SMs)", "ok"));
            rows.add(new Row("device", "memory", String.format(Locale.ROOT, "%.1f GiB, peak %.0f GB/s", bytes.get(cuda_h.C_LONG, 0) / (double) (1L << 30), peak / 1e9), "ok"));
            rows.add(new Row("device", "driver", "CUDA " + version / 1000 + "." + version % 1000 / 10 + " (" + cuda_h.libraryStatus() + ")", "ok"));
        }
    }

    private static int attribute(Arena arena, int attribute, int dev) {
        MemorySegment v = arena.allocate(cuda_h.C_INT);
        check(cuda_h.cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
        return v.get(cuda_h.C_INT, 0);
    }

    // ---------------------------------------------------------------- (b) parity

    private Backend deviceBackend() {
        if (cpuOnly) return new CpuBackend(Math.max(1, numThreads / 2));
        return DeviceSelector.create(DeviceSelector.parse(device), numThreads, System.err);
    }

    private void parity() {
        SplittableRandom random = new SplittableRandom(7);
        try (Arena arena = Arena.ofShared(); Backend ref = new CpuBackend(numThreads); Backend dut = deviceBackend()) {
            log("parity: %s against %s", dut.name(), ref.name());
            int dim = 512, rows = 768, vocab = 96;
            for (TensorType type : MATMUL_TYPES) {
                for (int numTokens : new int[] {1, 16}) {
                    parityOp("matmul " + type.ggmlName() + " x" + numTokens, type == TensorType.F32 ? 1e-4 : 2e-2, () -> {
                        float[] w = gaussian(random, rows * dim, 0.05f);
                        float[] x = gaussian(random, numTokens * dim, 1f);
                        return compare(b -> {
                            Weight wt = weight(b, arena, "w", type, w, rows, dim);
                            Activations in = upload(b, x, numTokens, dim), out = b.allocate(numTokens, rows);
                            b.matmul(wt, in, numTokens, out);
                            return download(b, out, numTokens);
                        }, ref, dut);
                    });
                }
            }
            for (TensorType type : List.of(TensorType.F32, TensorType.F16, TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_K, TensorType.Q6_K)) {
                parityOp("embed " + type.ggmlName(), 1e-3, () -> {
                    float[] table = gaussian(random, vocab * dim, 1f);
                    int[] tokens = {3, 0, vocab - 1, 17, 3};
                    return compare(b -> {
                        Activations out = b.allocate(tokens.length, dim);
                        b.embed(weight(b, arena, "embd", type, table, vocab, dim), tokens, tokens.length, out);
                        return download(b, out, tokens.length);
                    }, ref, dut);
                });
            }
            int n = 7;
            parityOp("rmsNorm", 1e-4, () -> {
                float[] x = gaussian(random, n * dim, 3f), g = gaussian(random, dim, 1f);
                return compare(b -> {
                    Activations in = upload(b, x, n, dim), out = b.allocate(n, dim);
                    b.rmsNorm(in, weight(b, arena, "g", TensorType.F32, g, 1, dim), 1e-5f, n, out);
                    return download(b, out, n);
                }, ref, dut);
            });
            parityOp("addBias", 1e-6, () -> {
                float[] x = gaussian(random, n * dim, 1f), bias = gaussian(random, dim, 1f);
                return compare(b -> {
                    Activations in = upload(b, x, n, dim);
                    b.addBias(in, weight(b, arena, "bias", TensorType.F32, bias, 1, dim), n);
                    return download(b, in, n);
                }, ref, dut);
            });
            for (boolean neox : new boolean[] {false, true}) {
                parityOp("rope" + (neox ? " neox" : ""), 1e-4, () -> {
                    int heads = 8, headDim = 64;
                    float[] x = gaussian(random, n * heads * headDim, 1f);
                    int[] positions = new int[n];
                    for (int t = 0; t < n; t++) positions[t] = random.nextInt(4000);
                    RopeTable table = RopeTable.of(headDim, 10000, null, 1, neox);
                    return compare(b -> {
                        Activations in = upload(b, x, n, heads * headDim);
                        b.rope(in, n, heads, headDim, positions, table);
                        return download(b, in, n);
                    }, ref, dut);
                });
            }
            parityOp("swiglu", 1e-5, () -> {
                float[] g = gaussian(random, n * rows, 2f), u = gaussian(random, n * rows, 1f);
                return compare(b -> {
                    Activations gate = upload(b, g, n, rows), up = upload(b, u, n, rows);
                    b.swiglu(gate, up, n);
                    return download(b, gate, n);
                }, ref, dut);
            });
            parityOp("add", 1e-6, () -> {
                float[] a = gaussian(random, n * dim, 1f), x = gaussian(random, n * dim, 1f);
                return compare(b -> {
                    Activations acc = upload(b, a, n, dim), in = upload(b, x, n, dim);
                    b.add(acc, in, n);
                    return download(b, acc, n);
                }, ref, dut);
            });
            parityOp("attention (prefill 20 + mixed batch, GQA 8/2)", 1e-3, () -> attentionParity(random, ref, dut, false, null));
            parityOp("rope + attention (fused KV store)", 1e-3, () -> attentionParity(random, ref, dut, true, null));
            for (KvCacheType kvType : KvCacheType.values())
                parityOp("rope + attention, paged " + kvType + " store", 1e-3, () -> attentionParity(random, ref, dut, true, kvType));
            for (TensorType type : List.of(TensorType.F16, TensorType.Q4_0, TensorType.Q8_0))
                for (int numTokens : new int[] {1, 2, 5})
                    parityOp("fused matvecs " + type.ggmlName() + " x" + numTokens + " (QKV, +add, gate/up+swiglu, split rows)", 2e-2,
                            () -> fusedMatvecParity(random, arena, ref, dut, type, numTokens));
        }
    }

    /**
     * The op sequence of a layer whose neighbours the CUDA backend fuses: rmsNorm then three matmuls over its output
     * (one launch), a matmul whose output is added into a residual, rmsNorm then gate and up followed by swiglu, and
     * a down projection added into the residual. Rows of 4096 and 8192 columns take the split-row matvec (2 and 4
     * warps per row). Every output is compared, the normalized rows included.
     */
    private static double[] fusedMatvecParity(SplittableRandom random, Arena arena, Backend ref, Backend dut, TensorType type, int n) {
        int dim = 256, qRows = 4096, kvRows = 128, hidden = 8192;
        float[] wq = gaussian(random, qRows * dim, 0.05f), wk = gaussian(random, kvRows * dim, 0.05f), wv = gaussian(random, kvRows * dim, 0.05f);
        float[] wo = gaussian(random, dim * qRows, 0.05f), wg = gaussian(random, hidden * dim, 0.05f), wu = gaussian(random, hidden * dim, 0.05f);
        float[] wd = gaussian(random, dim * hidden, 0.05f);
        float[] x = gaussian(random, n * dim, 1f), residual = gaussian(random, n * dim, 1f);
        float[] gamma1 = gaussian(random, dim, 1f), gamma2 = gaussian(random, dim, 1f);
        return compare(b -> {
            Activations in = upload(b, x, n, dim), acc = upload(b, residual, n, dim);
            Activations xn = b.allocate(n, dim), an = b.allocate(n, dim);
            Activations q = b.allocate(n, qRows), k = b.allocate(n, kvRows), v = b.allocate(n, kvRows), o = b.allocate(n, dim);
            Activations g = b.allocate(n, hidden), u = b.allocate(n, hidden);
            Weight wq1 = weight(b, arena, "wq", type, wq, qRows, dim), wk1 = weight(b, arena, "wk", type, wk, kvRows, dim);
            Weight wv1 = weight(b, arena, "wv", type, wv, kvRows, dim), wo1 = weight(b, arena, "wo", type, wo, dim, qRows);
            Weight wg1 = weight(b, arena, "wg", type, wg, hidden, dim), wu1 = weight(b, arena, "wu", type, wu, hidden, dim);
            Weight wd1 = weight(b, arena, "wd", type, wd, dim, hidden);
            Activations d = b.allocate(n, dim);
            Weight g1 = weight(b, arena, "g1", TensorType.F32, gamma1, 1, dim), g2 = weight(b, arena, "g2", TensorType.F32, gamma2, 1, dim);
            b.rmsNorm(in, g1, 1e-5f, n, xn);
            b.matmul(wq1, xn, n, q);
            b.matmul(wk1, xn, n, k);
            b.matmul(wv1, xn, n, v);
            b.matmul(wo1, q, n, o);
            b.add(acc, o, n);
            b.rmsNorm(acc, g2, 1e-5f, n, an);
            b.matmul(wg1, an, n, g);
            b.matmul(wu1, an, n, u);
            b.swiglu(g, u, n);
            float[] accMid = download(b, acc, n);
            b.matmul(wd1, g, n, d);
            b.add(acc, d, n);
            float[][] parts = {download(b, xn, n), download(b, q, n), download(b, k, n), download(b, v, n), download(b, o, n),
                    accMid, download(b, an, n), download(b, g, n), download(b, u, n), download(b, d, n), download(b, acc, n)};
            int total = 0;
            for (float[] part : parts) total += part.length;
            float[] all = new float[total];
            int at = 0;
            for (float[] part : parts) { System.arraycopy(part, 0, all, at, part.length); at += part.length; }
            return all;
        }, ref, dut);
    }

    /**
     * Sequence A prefills 20 tokens, then one batch holds A's next token and B's first 5: both outputs are compared.
     * With {@code rope}, q and k are rotated first (what the CUDA backend fuses into its KV store); with a
     * {@code pagedType}, both sequences live in one paged store, their blocks interleaved and out of order.
     */
    private static double[] attentionParity(SplittableRandom random, Backend ref, Backend dut, boolean rope, KvCacheType pagedType) {
        int heads = 8, kvHeads = 2, headDim = 64, layers = 2, layer = 1;
        int[] sizes = {20, 6};
        float[][] q = new float[2][], k = new float[2][], v = new float[2][];
        for (int s = 0; s < 2; s++) {
            q[s] = gaussian(random, sizes[s] * heads * headDim, 1f);
            k[s] = gaussian(random, sizes[s] * kvHeads * headDim, 1f);
            v[s] = gaussian(random, sizes[s] * kvHeads * headDim, 1f);
        }
        RopeTable table = RopeTable.of(headDim, 10000, null, 1, false);
        return compare(b -> {
            KvBlockStore store = pagedType == null ? null : b.allocateKvBlocks(layers, kvHeads, headDim, 16, 6, pagedType);
            try (KvCache a = store == null ? b.allocateKvCache(layers, kvHeads, headDim, 64) : paged(store, new int[] {4, 1}, 2);
                 KvCache c = store == null ? b.allocateKvCache(layers, kvHeads, headDim, 64) : paged(store, new int[] {3}, 1)) {
                float[] outs = new float[(sizes[0] + sizes[1]) * heads * headDim];
                AttentionBatch first = AttentionBatch.single(a, 0, sizes[0]);
                AttentionBatch mixed = new AttentionBatch(6, new int[] {20, 0, 1, 2, 3, 4}, new KvCache[] {a, c, c, c, c, c});
                AttentionBatch[] batches = {first, mixed};
                int offset = 0;
                for (int s = 0; s < 2; s++) {
                    int n = sizes[s];
                    Activations qa = upload(b, q[s], n, heads * headDim), ka = upload(b, k[s], n, kvHeads * headDim),
                            va = upload(b, v[s], n, kvHeads * headDim), out = b.allocate(n, heads * headDim);
                    if (rope) {
                        b.rope(qa, n, heads, headDim, batches[s].positions(), table);
                        b.rope(ka, n, kvHeads, headDim, batches[s].positions(), table);
                    }
                    b.attention(layer, qa, ka, va, batches[s], heads, kvHeads, headDim, out);
                    float[] o = download(b, out, n);
                    System.arraycopy(o, 0, outs, offset, o.length);
                    offset += o.length;
                }
                return outs;
            } finally {
                if (store != null) store.close();
            }
        }, ref, dut);
    }

    private static PagedKvCache paged(KvBlockStore store, int[] ids, int n) {
        PagedKvCache cache = new PagedKvCache(store);
        cache.setBlocks(ids, n);
        return cache;
    }

    interface OpRun { float[] run(Backend b); }

    interface ParityCase { double[] run(); }

    /** {max abs error, max abs error / max |reference|}. */
    private static double[] compare(OpRun op, Backend ref, Backend dut) {
        float[] expected = op.run(ref), got = op.run(dut);
        double maxAbs = 0, maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(expected[i] - got[i]);
            if (!(d <= maxAbs)) maxAbs = d; // NaN sticks
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return new double[] {maxAbs, maxAbs / Math.max(maxRef, 1e-30)};
    }

    private void parityOp(String name, double tolerance, ParityCase body) {
        try {
            double[] err = body.run();
            boolean ok = err[1] <= tolerance;
            String value = String.format(Locale.ROOT, "abs %.2e  rel %.2e  (tol %.0e)", err[0], err[1], tolerance);
            log("parity %-45s %s %s", name, value, ok ? "ok" : "FAIL");
            rows.add(new Row("parity", name, value, ok ? "ok" : "FAIL"));
        } catch (Throwable e) {
            log("parity %-45s failed: %s", name, e);
            rows.add(new Row("parity", name, oneLine(e.toString()), "FAIL"));
        }
    }

    private static Weight weight(Backend b, Arena arena, String name, TensorType type, float[] values, int rows, int cols) {
        long rowBytes = type.byteSize(cols);
        MemorySegment data = arena.allocate(rowBytes * rows, 64);
        for (int r = 0; r < rows; r++) Quantizer.quantize(type, values, r * cols, cols, data, r * rowBytes);
        return b.weight(name, type, data, rows, cols);
    }

    private static Activations upload(Backend b, float[] data, int numTokens, int width) {
        Activations a = b.allocate(numTokens, width);
        b.upload(data, a, numTokens);
        return a;
    }

    private static float[] download(Backend b, Activations a, int numTokens) {
        float[] out = new float[numTokens * a.width()];
        b.download(a, out, numTokens);
        return out;
    }

    private static float[] gaussian(SplittableRandom random, int n, float std) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller: one normal per pair of uniforms is plenty for test data.
            double u = 1 - random.nextDouble(), w = random.nextDouble();
            out[i] = (float) (std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w));
        }
        return out;
    }

    // ---------------------------------------------------------------- (c) stories260K

    private void stories() throws IOException {
        Path model = modelsDir.resolve("stories260K.gguf");
        String json = Files.readString(modelsDir.resolve("stories260K.reference.json"));
        List<int[][]> cases = referenceCases(json);
        if (cases.isEmpty()) throw new IllegalStateException("stories260K.reference.json: no cases found");
        try (LoadedModel m = ModelLoader.load(model, deviceBackend(), 64, 1)) {
            LlamaModel lm = m.model();
            int caseIndex = 0;
            for (int[][] c : cases) {
                int[] prompt = c[0], expected = c[1];
                int total = c[2][0];
                List<Integer> got = new ArrayList<>();
                float[] logits = new float[m.config().vocabSize()];
                try (KvCache cache = lm.newKvCache(total)) {
                    lm.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, logits);
                    for (int pos = prompt.length; pos <= total; pos++) {
                        int next = argmax(logits);
                        got.add(next);
                        if (next == 1 || pos == total) break;
                        lm.forward(new int[] {next}, AttentionBatch.single(cache, pos, 1), new int[] {0}, logits);
                    }
                }
                int firstDiff = -1;
                for (int i = 0; i < Math.max(got.size(), expected.length); i++) {
                    if (i >= got.size() || i >= expected.length || got.get(i) != expected[i]) { firstDiff = i; break; }
                }
                String value = firstDiff < 0 ? expected.length + "/" + expected.length + " greedy ids match"
                        : "first difference at id " + firstDiff + " of " + expected.length;
                log("stories260K case %d (%d prompt tokens): %s", caseIndex, prompt.length, value);
                rows.add(new Row("stories", "case " + caseIndex + " (" + lm.backend().name() + ")", value, firstDiff < 0 ? "ok" : "FAIL"));
                caseIndex++;
            }
        }
    }

    /** Each case as {prompt ids, expected greedy ids, {steps_total_positions}}, read without a JSON library. */
    static List<int[][]> referenceCases(String json) {
        List<int[][]> out = new ArrayList<>();
        Matcher steps = Pattern.compile("\"steps_total_positions\"\\s*:\\s*(\\d+)").matcher(json);
        Matcher prompt = Pattern.compile("\"prompt_token_ids\"\\s*:\\s*\\[([^\\]]*)\\]").matcher(json);
        Matcher greedy = Pattern.compile("\"greedy_generated_token_ids\"\\s*:\\s*\\[([^\\]]*)\\]").matcher(json);
        while (steps.find() && prompt.find() && greedy.find())
            out.add(new int[][] {ids(prompt.group(1)), ids(greedy.group(1)), {Integer.parseInt(steps.group(1))}});
        return out;
    }

    private static int[] ids(String list) {
        return Arrays.stream(list.split(",")).map(String::trim).filter(s -> !s.isEmpty()).mapToInt(Integer::parseInt).toArray();
    }

    // ---------------------------------------------------------------- (c'') the batching engine on the device

    /**
     * The serving engine on this device: stories260K's three reference cases plus five more prompts, submitted at once
     * to a {@link BatchingEngine} whose paged pool (20 blocks, 320 positions) cannot hold them together, so requests are
     * batched, preempted and recomputed. Every request's greedy ids must equal the reference (or its solo run on the
     * same device), and every block must be free at the end; F32 and F16 pools.
     */
    private void engine() throws Exception {
        Path file = modelsDir.resolve("stories260K.gguf");
        List<int[][]> cases = referenceCases(Files.readString(modelsDir.resolve("stories260K.reference.json")));
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 64, 8)) {
            SplittableRandom random = new SplittableRandom(5);
            List<int[]> prompts = new ArrayList<>(), expected = new ArrayList<>();
            for (int[][] c : cases) { prompts.add(c[0]); expected.add(c[1]); }
            // The reference: each prompt alone on an engine that runs one sequence at a time.
            try (BatchingEngine solo = new BatchingEngine(m.model(), EngineConfig.defaults(1, 64, 1))) {
                while (prompts.size() < 8) {
                    int[] p = new int[3 + random.nextInt(30)];
                    p[0] = 1;
                    for (int i = 1; i < p.length; i++) p[i] = 3 + random.nextInt(500);
                    prompts.add(p);
                    expected.add(SingleRequest.run(solo, new EngineRequest("solo", p, SamplingParams.greedy(), 60, t -> false, false), t -> true).tokens());
                }
            }
            for (KvCacheType type : KvCacheType.values()) {
                long bytes = 20 * KvBlockStore.bytesPerBlock(m.config().numLayers(), m.config().kvDim(), 16, type);
                try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(8, 64, 8).withKvCache(bytes, type))) {
                    List<RequestHandle> handles = new ArrayList<>();
                    for (int i = 0; i < prompts.size(); i++)
                        handles.add(engine.submit(new EngineRequest("g" + i, prompts.get(i), SamplingParams.greedy(), expected.get(i).length, t -> false, false)));
                    int same = 0;
                    for (int i = 0; i < handles.size(); i++) if (Arrays.equals(expected.get(i), EngineLoad.tokens(handles.get(i)))) same++;
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                    while (engine.numFreeKvBlocks() != engine.numKvBlocks() && System.nanoTime() < deadline) Thread.sleep(5);
                    boolean ok = same == prompts.size() && engine.numFreeKvBlocks() == engine.numKvBlocks() && engine.stats().preemptions() > 0;
                    // F16 keys may flip a near-tie late in a long greedy run; F32 must match every id.
                    boolean pass = ok || (type == KvCacheType.F16 && same >= prompts.size() - 1 && engine.numFreeKvBlocks() == engine.numKvBlocks());
                    String value = String.format(Locale.ROOT, "%d/%d match, %d preemptions, %d/%d blocks free", same, prompts.size(),
                            engine.stats().preemptions(), engine.numFreeKvBlocks(), engine.numKvBlocks());
                    log("engine %s: %s", type, value);
                    rows.add(new Row("engine", "8 requests, 20-block " + type + " pool (" + m.model().backend().name() + ")", value, pass ? "ok" : "FAIL"));
                }
            }
        }
        engineThroughput();
    }

    /**
     * The engine's acceptance load (issue: 128-token prompts, 64 greedy tokens, concurrency 1 and 8) on Q4_0
     * llama-1b: output tok/s at each and their ratio. On a device where one sequence's decode is bandwidth-bound,
     * batching should multiply throughput; a 2-core CPU is compute-bound already at one sequence.
     */
    private void engineThroughput() throws Exception {
        SynthPreset preset = cpuOnly ? SynthPreset.TINY : SynthPreset.LLAMA_1B;
        Path file = synth(preset, TensorType.Q4_0);
        int promptTokens = cpuOnly ? 32 : 128, genTokens = cpuOnly ? 16 : 64;
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 256, 16);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(16, 256, 64))) {
            int vocab = m.config().vocabSize();
            EngineLoad.run(engine, vocab, 8, 8, promptTokens, 8, 1);  // warm-up: kernels, graphs, JIT
            EngineLoad.Result c1 = EngineLoad.run(engine, vocab, 1, 8, promptTokens, genTokens, 2);
            EngineLoad.Result c8 = EngineLoad.run(engine, vocab, 8, 16, promptTokens, genTokens, 3);
            String label = preset.presetName + " q4_0, " + promptTokens + "+" + genTokens + " tokens";
            log("engine load %s: c1 %.1f tok/s, c8 %.1f tok/s (%.2fx), failed %d + %d", label, c1.outputTokensPerS(),
                    c8.outputTokensPerS(), c8.outputTokensPerS() / c1.outputTokensPerS(), c1.failed(), c8.failed());
            String status = c1.failed() + c8.failed() == 0 ? "ok" : "FAIL";
            rows.add(new Row("engine", label + ", concurrency 1", String.format(Locale.ROOT, "%.1f output tok/s (8 requests)", c1.outputTokensPerS()), status));
            rows.add(new Row("engine", label + ", concurrency 8", String.format(Locale.ROOT, "%.1f output tok/s (16 requests), %.2fx concurrency 1",
                    c8.outputTokensPerS(), c8.outputTokensPerS() / c1.outputTokensPerS()), status));
        }
    }

    // ---------------------------------------------------------------- (c') paged KV store

    /**
     * Three stories260K sequences through PagedKvCaches over one shared store (block ids shuffled and dealt out
     * round-robin, so tables are neither the identity nor contiguous): a mixed prefill batch, batched decode steps,
     * then single-sequence steps (recorded and replayed as a graph) whose table grows across block boundaries. Logits
     * must match private caches on the same device, and the CPU backend's paged store of the same type.
     */
    private void paged() throws IOException {
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
            rows.add(new Row("paged", "errors (block size, position past table, closed store)", "CPU backend (dry run)", "SKIP"));
            return;
        }
        pagedErrors(file);
        log("paged: on %s", deviceName);
    }

    private void addParityRow(String name, double[] err, double tolerance) {
        boolean ok = err[1] <= tolerance;
        String value = String.format(Locale.ROOT, "abs %.2e  rel %.2e  (tol %.0e)", err[0], err[1], tolerance);
        log("paged %-50s %s %s", name, value, ok ? "ok" : "FAIL");
        rows.add(new Row("paged", name, value, ok ? "ok" : "FAIL"));
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
            for (int s = 0; s < numSeqs; s++) next[s] = argmax(logits, s * vocab, vocab);
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
            int[] next = {argmax(one, 0, vocab)};
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
        rows.add(new Row("paged", "errors (block size, position past table, closed store)",
                failures.isEmpty() ? "each refused with a clear exception" : String.join("; ", failures), failures.isEmpty() ? "ok" : "FAIL"));
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

    // ---------------------------------------------------------------- (d) decode and prefill throughput

    private void decode() {
        SynthPreset preset = cpuOnly ? SynthPreset.TINY : SynthPreset.LLAMA_1B;
        List<TensorType> types = quick ? List.of(TensorType.F16) : List.of(TensorType.F16, TensorType.Q4_0);
        for (TensorType type : types) {
            String label = preset.presetName + " " + type.ggmlName();
            try {
                Path file = synth(preset, type);
                throughput(label, file, type);
            } catch (Throwable e) {
                log("decode %s failed: %s", label, e);
                rows.add(new Row("decode", label, oneLine(e.toString()), "FAIL"));
            }
        }
    }

    /** Where a batch-1 decode step's time goes: each launch synchronized and timed, per kernel, per token. */
    private void profileDecode(String label, LlamaModel model, dev.tessera.kernels.cuda.CudaBackend cuda, int[] prompt, int steps, float[] logits) {
        int vocab = model.config().vocabSize(), promptTokens = prompt.length;
        try (KvCache cache = model.newKvCache(promptTokens + steps + 1)) {
            model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
            int[] one = {argmax(logits, 0, vocab)};
            cuda.profile(true);
            long t0 = System.nanoTime();
            for (int s = 0; s < steps; s++) {
                model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[] {0}, logits);
                one[0] = argmax(logits, 0, vocab);
            }
            double stepMicros = (System.nanoTime() - t0) / 1e3 / steps;
            var results = new java.util.TreeMap<>(cuda.profileResults());
            cuda.profile(false);
            double kernelMicros = 0;
            for (long[] r : results.values()) kernelMicros += r[1] / 1e3 / steps;
            rows.add(new Row("profile", label + " eager step (synchronized)", String.format(Locale.ROOT, "%.0f us/token, kernels %.0f us", stepMicros, kernelMicros), "ok"));
            results.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1])).limit(12).forEach(e ->
                    rows.add(new Row("profile", "  " + e.getKey(), String.format(Locale.ROOT, "%.1f us/token (%d launches/token)",
                            e.getValue()[1] / 1e3 / steps, e.getValue()[0] / steps), "ok")));
        } catch (Throwable e) {
            cuda.profile(false);
            rows.add(new Row("profile", label, oneLine(e.toString()), "FAIL"));
        }
    }

    private Path synth(SynthPreset preset, TensorType type) throws IOException {
        Files.createDirectories(workDir);
        Path out = workDir.resolve("synth-" + preset.presetName + "-" + type.ggmlName() + ".gguf");
        if (Files.isRegularFile(out) && Files.size(out) > 0) {
            log("synth: reusing %s", out);
            return out;
        }
        Path vocab = modelsDir.resolve(SynthPreset.DEFAULT_VOCAB);
        long t0 = System.nanoTime();
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        SynthModel.of(preset, type, 42).write(vocab, partial, System.err);
        Files.move(partial, out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        log("synth: wrote %s (%.2f GB) in %.1f s", out.getFileName(), Files.size(out) / 1e9, (System.nanoTime() - t0) / 1e9);
        return out;
    }

    private void throughput(String label, Path file, TensorType type) {
        int batch = 16, promptTokens = quick ? 128 : 256, steps = quick ? 16 : 32;
        // Batch 1 takes more steps and the median of 3 runs: 32 steps are ~50 ms, where one host hiccup moves the result.
        int steps1 = quick ? 64 : 128;
        int perSequencePrompt = promptTokens / batch;
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), promptTokens, batch)) {
            LlamaModel model = m.model();
            int vocab = m.config().vocabSize();
            long bytesPerToken = 0;
            for (GgufTensorInfo t : m.file().tensors().values())
                if (!t.name().equals("token_embd.weight")) bytesPerToken += t.sizeBytes();
            SplittableRandom random = new SplittableRandom(42);
            int[] prompt = new int[promptTokens];
            for (int i = 0; i < promptTokens; i++) prompt[i] = 260 + random.nextInt(vocab - 260);
            float[] logits = new float[batch * vocab];

            // Batch 1: one prompt in one forward, then greedy decode. The first run warms up (kernels, graphs, caches).
            double[] prefillRuns = new double[3], decodeRuns = new double[3];
            for (int rep = -1; rep < 3; rep++) {
                try (KvCache cache = model.newKvCache(promptTokens + steps1 + 1)) {
                    long t0 = System.nanoTime();
                    model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
                    long t1 = System.nanoTime();
                    int[] one = {argmax(logits, 0, vocab)};
                    // Greedy steps as the engine runs them: the argmax on the device, the id back as the next token.
                    for (int s = 0; s < steps1; s++)
                        model.forwardArgmax(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[] {0}, one);
                    long t2 = System.nanoTime();
                    if (rep < 0) continue;  // warm-up
                    prefillRuns[rep] = promptTokens / ((t1 - t0) / 1e9);
                    decodeRuns[rep] = steps1 / ((t2 - t1) / 1e9);
                }
            }
            double prefill1 = BenchCommand.median(prefillRuns), decode1 = BenchCommand.median(decodeRuns);
            // The same steps queued back to back, nobody waiting for a token (no classifier, no argmax, one sync at the
            // end): the device's own time per step. decode b1 minus this is what each greedy step adds on the host.
            double queued1;
            try (KvCache cache = model.newKvCache(promptTokens + steps1 + 1)) {
                model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
                int[] one = {argmax(logits, 0, vocab)};
                for (int s = 0; s < 2; s++) model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[0], logits);
                long t0 = System.nanoTime();
                for (int s = 2; s < steps1; s++) model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[0], logits);
                model.forward(one, AttentionBatch.single(cache, promptTokens + steps1, 1), new int[] {0}, logits);
                queued1 = (steps1 - 1) / ((System.nanoTime() - t0) / 1e9);
            }

            if (model.backend() instanceof dev.tessera.kernels.cuda.CudaBackend cuda) profileDecode(label, model, cuda, prompt, steps, logits);

            // Batch 16: 16 sequences prefilled together in one forward, then one token each per forward.
            double prefill16 = 0, decode16 = 0;
            KvCache[] caches = new KvCache[batch];
            try {
                for (int s = 0; s < batch; s++) caches[s] = model.newKvCache(perSequencePrompt + steps + 1);
                int[] positions = new int[promptTokens];
                KvCache[] owners = new KvCache[promptTokens];
                int[] lastRows = new int[batch];
                for (int s = 0; s < batch; s++) {
                    for (int p = 0; p < perSequencePrompt; p++) {
                        positions[s * perSequencePrompt + p] = p;
                        owners[s * perSequencePrompt + p] = caches[s];
                    }
                    lastRows[s] = s * perSequencePrompt + perSequencePrompt - 1;
                }
                long t0 = System.nanoTime();
                model.forward(prompt, new AttentionBatch(promptTokens, positions, owners), lastRows, logits);
                long t1 = System.nanoTime();
                int[] next = new int[batch], decodePositions = new int[batch], all = new int[batch];
                for (int s = 0; s < batch; s++) { next[s] = argmax(logits, s * vocab, vocab); all[s] = s; }
                for (int step = 0; step < steps; step++) {
                    Arrays.fill(decodePositions, perSequencePrompt + step);
                    model.forwardArgmax(next, new AttentionBatch(batch, decodePositions, caches), all, next);
                }
                long t2 = System.nanoTime();
                prefill16 = promptTokens / ((t1 - t0) / 1e9);
                decode16 = (double) batch * steps / ((t2 - t1) / 1e9);
            } finally {
                for (KvCache c : caches) if (c != null) c.close();
            }
            String backend = model.backend().name();
            log("%s on %s: prefill %.0f tok/s (b1, %d tokens), %.0f tok/s (b16); decode %.1f tok/s (b1), %.1f tok/s (b16, %d steps)",
                    label, backend, prefill1, promptTokens, prefill16, decode1, decode16, steps);
            rows.add(new Row("decode", label + " prefill b1", String.format(Locale.ROOT, "%.0f tok/s", prefill1), "ok"));
            rows.add(new Row("decode", label + " prefill b16", String.format(Locale.ROOT, "%.0f tok/s", prefill16), "ok"));
            rows.add(new Row("decode", label + " decode b1", String.format(Locale.ROOT, "%.1f tok/s (median of 3 x %d steps)", decode1, steps1), "ok"));
            rows.add(new Row("decode", label + " decode b1, steps queued", String.format(Locale.ROOT, "%.1f tok/s (%.0f us/step on the device, %.0f us host per greedy step)",
                    queued1, 1e6 / queued1, 1e6 / decode1 - 1e6 / queued1), "ok"));
            rows.add(new Row("decode", label + " decode b16", String.format(Locale.ROOT, "%.1f tok/s", decode16), "ok"));
            if (type == TensorType.F16) {
                f16DecodeTokensPerS = decode1;
                f16BytesPerToken = bytesPerToken;
            }
        }
    }

    // ---------------------------------------------------------------- (e) copy bandwidth roofline

    private void bandwidth() {
        long size = quick ? 256L << 20 : 1L << 30;
        int reps = 10;
        double bytesPerS = cpuOnly ? hostCopyBandwidth(Math.min(size, 256L << 20), 5) : deviceCopyBandwidth(size, reps);
        copyBandwidthBytesPerS = bytesPerS;
        String what = cpuOnly ? "host memcpy (dry run)" : "cuMemcpyDtoD " + (size >> 20) + " MiB";
        log("bandwidth: %s %.1f GB/s (read + write)", what, bytesPerS / 1e9);
        rows.add(new Row("bandwidth", what, String.format(Locale.ROOT, "%.1f GB/s", bytesPerS / 1e9), "ok"));
        if (!Double.isNaN(f16DecodeTokensPerS) && f16BytesPerToken > 0) {
            double ideal = bytesPerS / f16BytesPerToken;
            double fraction = f16DecodeTokensPerS / ideal;
            log("roofline: F16 decode b1 reads %.2f GB of weights per token; at %.1f GB/s the ceiling is %.1f tok/s; measured %.1f = %.0f%%",
                    f16BytesPerToken / 1e9, bytesPerS / 1e9, ideal, f16DecodeTokensPerS, 100 * fraction);
            rows.add(new Row("bandwidth", "f16 decode b1 / roofline", String.format(Locale.ROOT, "%.0f%% (%.1f of %.1f tok/s)",
                    100 * fraction, f16DecodeTokensPerS, ideal), "ok"));
        } else {
            rows.add(new Row("bandwidth", "f16 decode b1 / roofline", "n/a (decode section did not measure F16)", "SKIP"));
        }
    }

    /** Device-to-device copy bandwidth counting the read and the write, timed with events on the legacy stream. */
    static double deviceCopyBandwidth(long size, int reps) {
        try (Arena arena = Arena.ofConfined()) {
            check(cuda_h.cuInit(0), "cuInit");
            MemorySegment i = arena.allocate(cuda_h.C_INT);
            check(cuda_h.cuDeviceGet(i, 0), "cuDeviceGet");
            int dev = i.get(cuda_h.C_INT, 0);
            MemorySegment ctx = arena.allocate(cuda_h.C_POINTER);
            check(cuda_h.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain");
            MemorySegment previous = arena.allocate(cuda_h.C_POINTER);
            check(cuda_h.cuCtxGetCurrent(previous), "cuCtxGetCurrent");
            check(cuda_h.cuCtxSetCurrent(ctx.get(cuda_h.C_POINTER, 0)), "cuCtxSetCurrent");
            MemorySegment p = arena.allocate(cuda_h.C_LONG_LONG);
            long src = 0, dst = 0;
            MemorySegment start = MemorySegment.NULL, end = MemorySegment.NULL;
            try {
                check(cuda_h.cuMemAlloc_v2(p, size), "cuMemAlloc " + size);
                src = p.get(cuda_h.C_LONG_LONG, 0);
                check(cuda_h.cuMemAlloc_v2(p, size), "cuMemAlloc " + size);
                dst = p.get(cuda_h.C_LONG_LONG, 0);
                check(cuda_h.cuMemsetD8_v2(src, (byte) 1, size), "cuMemsetD8");
                MemorySegment e = arena.allocate(cuda_h.C_POINTER);
                check(cuda_h.cuEventCreate(e, cuda_h.CU_EVENT_DEFAULT), "cuEventCreate");
                start = e.get(cuda_h.C_POINTER, 0);
                check(cuda_h.cuEventCreate(e, cuda_h.CU_EVENT_DEFAULT), "cuEventCreate");
                end = e.get(cuda_h.C_POINTER, 0);
                check(cuda_h.cuMemcpyDtoDAsync_v2(dst, src, size, MemorySegment.NULL), "cuMemcpyDtoDAsync");
                check(cuda_h.cuCtxSynchronize(), "cuCtxSynchronize");
                check(cuda_h.cuEventRecord(start, MemorySegment.NULL), "cuEventRecord");
                for (int r = 0; r < reps; r++) check(cuda_h.cuMemcpyDtoDAsync_v2(dst, src, size, MemorySegment.NULL), "cuMemcpyDtoDAsync");
                check(cuda_h.cuEventRecord(end, MemorySegment.NULL), "cuEventRecord");
                check(cuda_h.cuEventSynchronize(end), "cuEventSynchronize");
                MemorySegment ms = arena.allocate(cuda_h.C_FLOAT);
                int rc;
                try {
                    rc = cuda_h.cuEventElapsedTime_v2(ms, start, end);
                } catch (LibraryUnavailableException old) {
                    rc = cuda_h.cuEventElapsedTime(ms, start, end); // drivers before 12.8 export only the first version
                }
                check(rc, "cuEventElapsedTime");
                double seconds = ms.get(cuda_h.C_FLOAT, 0) / 1e3;
                return 2.0 * size * reps / seconds;
            } finally {
                if (!start.equals(MemorySegment.NULL)) cuda_h.cuEventDestroy_v2(start);
                if (!end.equals(MemorySegment.NULL)) cuda_h.cuEventDestroy_v2(end);
                if (src != 0) cuda_h.cuMemFree_v2(src);
                if (dst != 0) cuda_h.cuMemFree_v2(dst);
                cuda_h.cuCtxSetCurrent(previous.get(cuda_h.C_POINTER, 0));
                cuda_h.cuDevicePrimaryCtxRelease_v2(dev);
            }
        }
    }

    /** The dry run's stand-in: host memory copy bandwidth, read + write. */
    static double hostCopyBandwidth(long size, int reps) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(size, 64), dst = arena.allocate(size, 64);
            src.fill((byte) 1);
            MemorySegment.copy(src, 0, dst, 0, size);
            long t0 = System.nanoTime();
            for (int r = 0; r < reps; r++) MemorySegment.copy(src, 0, dst, 0, size);
            return 2.0 * size * reps / ((System.nanoTime() - t0) / 1e9);
        }
    }

    // ---------------------------------------------------------------- (f) PyTorch peer

    private void torchPeer() throws IOException, InterruptedException {
        Path python = onPath("python3");
        if (python == null) {
            rows.add(new Row("torch", "peer", "no python3 on PATH", "SKIP"));
            return;
        }
        if (!Files.isRegularFile(torchScript)) throw new IllegalStateException(torchScript + " not found");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), torchScript.toString()));
        if (quick) cmd.add("--quick");
        if (cpuOnly) cmd.addAll(List.of("--device", "cpu", "--tiny"));
        log("torch: %s", String.join(" ", cmd));
        Process process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(300, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IllegalStateException("gpu-torch-peer.py ran past 300 s");
        }
        String json = out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElse("");
        log("torch: %s", json.isEmpty() ? "(no JSON) exit " + process.exitValue() : json);
        Matcher error = Pattern.compile("\"error\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        if (error.find()) {
            rows.add(new Row("torch", "peer", error.group(1), "SKIP"));
            return;
        }
        for (String key : List.of("decode_tokens_per_s", "decode_tokens_per_s_cuda_graph")) {
            Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*([0-9.eE+-]+)").matcher(json);
            if (m.find()) rows.add(new Row("torch", "f16 " + key.replace("decode_tokens_per_s", "decode b1").replace("_", " "),
                    String.format(Locale.ROOT, "%.1f tok/s", Double.parseDouble(m.group(1))), "ok"));
        }
        if (process.exitValue() != 0) rows.add(new Row("torch", "peer", "exit " + process.exitValue(), "FAIL"));
    }

    // ---------------------------------------------------------------- helpers

    private void printSummary() {
        int w0 = 9, w1 = 10, w2 = 10;
        for (Row r : rows) { w0 = Math.max(w0, r.section().length()); w1 = Math.max(w1, r.item().length()); w2 = Math.max(w2, r.value().length()); }
        w2 = Math.min(w2, 90);
        String format = "%-" + w0 + "s  %-" + w1 + "s  %-" + w2 + "s  %s%n";
        System.out.println();
        System.out.printf(Locale.ROOT, format, "section", "item", "value", "status");
        System.out.println("-".repeat(w0 + w1 + w2 + 14));
        for (Row r : rows) System.out.printf(Locale.ROOT, format, r.section(), r.item(), r.value(), r.status());
        System.out.flush();
    }

    private static void check(int rc, String what) {
        if (rc == cuda_h.CUDA_SUCCESS) return;
        String name = "CUresult " + rc;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(cuda_h.C_POINTER);
            if (cuda_h.cuGetErrorName(rc, p) == cuda_h.CUDA_SUCCESS) name = p.get(cuda_h.C_POINTER, 0).reinterpret(256).getString(0);
        }
        throw new IllegalStateException(what + " failed: " + name + " (" + rc + ")");
    }

    private static int argmax(float[] x) {
        return argmax(x, 0, x.length);
    }

    private static int argmax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
        return best;
    }

    private static String oneLine(String s) {
        String one = s == null ? "" : s.replace('\n', ' ');
        return one.length() > 160 ? one.substring(0, 157) + "..." : one;
    }

    private static void log(String format, Object... args) {
        System.err.printf(Locale.ROOT, format + "%n", args);
        System.err.flush();
    }

    private static Path onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, program);
            if (Files.isExecutable(p)) return p;
        }
        return null;
    }

    private static String defaultModelsDir() {
        String configured = System.getProperty("tessera.models");
        if (configured != null) return configured;
        String home = System.getProperty("tessera.home", ".");
        for (String candidate : List.of(home + "/models", home + "/../shared/models", "../shared/models"))
            if (Files.isRegularFile(Path.of(candidate, "stories260K.gguf"))) return candidate;
        return home + "/models";
    }

    private static int defaultThreads() {
        try {
            return CpuTopology.physicalCores();
        } catch (Throwable e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }
}
