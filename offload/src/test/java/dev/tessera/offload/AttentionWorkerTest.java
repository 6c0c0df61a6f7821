package dev.tessera.offload;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedSequences;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.ModelConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A memory node in this process over a real socket: its attention for a head range equals the same heads computed
 * locally, across steps that grow block tables; it refuses a second compute node, and KV it cannot hold.
 */
class AttentionWorkerTest {
    static final int LAYERS = 2, HEADS = 8, KV_HEADS = 4, HEAD_DIM = 8, BLOCK = 4;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();
    AttentionWorker worker;
    Thread serving;

    @BeforeEach
    void start() throws Exception {
        worker = new AttentionWorker(new CpuBackend(1), 1 << 20, new InetSocketAddress("127.0.0.1", 0), new PrintStream(log, true));
        serving = Thread.ofPlatform().daemon().start(() -> {
            try {
                worker.serve();
            } catch (java.io.IOException ignored) {
                // closed
            }
        });
    }

    @AfterEach
    void stop() {
        worker.close();
    }

    static ModelConfig config() {
        Path dir = Path.of(System.getProperty("tessera.models", "../../shared/models"));
        try (var f = dev.tessera.models.gguf.GgufFile.open(dir.resolve("stories260K.gguf"))) {
            return ModelConfig.fromGguf(f);
        }
    }

    @Test
    void twoNodesComputeWhatLocalAttentionComputes() throws Exception {
        // Real shapes from stories260K (5 layers, 8 query heads over 4 KV heads of 8), two nodes of one worker each.
        ModelConfig c = config();
        try (AttentionWorker second = new AttentionWorker(new CpuBackend(1), 1 << 20, new InetSocketAddress("127.0.0.1", 0), new PrintStream(log, true))) {
            Thread.ofPlatform().daemon().start(() -> { try { second.serve(); } catch (java.io.IOException ignored) { } });
            CpuBackend compute = new CpuBackend(1);
            OffloadClient client = new OffloadClient("t", c, List.of(address(worker), address(second)), new int[]{1, 1}, WireFormat.F32, 16, 1, Duration.ofSeconds(10));
            client.allocate(8, BLOCK, "f32");
            RemoteAttention remote = client.lane(0, compute, 16);
            PagedSequences local = new PagedSequences(compute.allocateKvBlocks(c.numLayers(), c.numKvHeads(), c.headDim(), BLOCK, 8, KvCacheType.F32));
            int qw = c.numHeads() * c.headDim(), kw = c.numKvHeads() * c.headDim();
            Activations q = compute.allocate(16, qw), k = compute.allocate(16, kw), v = compute.allocate(16, kw);
            Activations want = compute.allocate(16, qw), got = compute.allocate(16, qw);
            SplittableRandom r = new SplittableRandom(3);
            // Step 1: sequence 0 prefills 5 positions (2 blocks), sequence 1 prefills 2 (1 block). Step 2: each decodes one.
            int[][][] steps = {{{0, 5, 0, 0, 1}, {1, 2, 0, 2}}, {{0, 1, 5}, {1, 1, 2}}};
            for (int[][] step : steps) {
                List<AttentionStep.Sequence> seqs = new java.util.ArrayList<>();
                int n = 0;
                for (int[] s : step) {
                    int[] blocks = java.util.Arrays.copyOfRange(s, 3, s.length);
                    seqs.add(new AttentionStep.Sequence(s[0], s[1], s[2], 0, blocks));
                    n += s[1];
                }
                client.beginStep(new AttentionStep(seqs, new int[0]));
                int[] positions = new int[n];
                dev.tessera.kernels.KvCache[] caches = new dev.tessera.kernels.KvCache[n];
                int row = 0;
                for (AttentionStep.Sequence s : seqs) {
                    var cache = local.update(s.id(), s.tableFrom(), s.newBlocks(), s.startPosition() + s.numRows());
                    for (int i = 0; i < s.numRows(); i++, row++) { positions[row] = s.startPosition() + i; caches[row] = cache; }
                }
                AttentionBatch batch = new AttentionBatch(n, positions, caches);
                for (int layer = 0; layer < c.numLayers(); layer++) {
                    compute.upload(random(r, n * qw), q, n);
                    compute.upload(random(r, n * kw), k, n);
                    compute.upload(random(r, n * kw), v, n);
                    compute.attention(layer, q, k, v, batch, c.numHeads(), c.numKvHeads(), c.headDim(), want);
                    client.turn().take();
                    remote.rows(0);
                    remote.attend(layer, q, k, v, batch, c.numHeads(), c.numKvHeads(), c.headDim(), got);
                    client.turn().give();
                    float[] a = new float[n * qw], b = new float[n * qw];
                    compute.download(want, a, n);
                    compute.download(got, b, n);
                    assertArrayEquals(a, b, 1e-6f, "layer " + layer);
                }
            }
            assertTrue(client.bytesPerTokenLayer() > client.paperBytesPerTokenLayer(), "bytes counted: " + client.bytesPerTokenLayer());
            client.close();
        }
    }

    @Test
    void aSecondComputeNodeIsRefusedInOneLine() {
        ModelConfig c = config();
        OffloadClient first = new OffloadClient("t", c, List.of(address(worker)), new int[]{1}, WireFormat.F16, 16, 1, Duration.ofSeconds(10));
        try {
            MemoryNodeException e = assertThrows(MemoryNodeException.class,
                    () -> new OffloadClient("t", c, List.of(address(worker)), new int[]{1}, WireFormat.F16, 16, 1, Duration.ofSeconds(10)));
            assertTrue(e.getMessage().contains("busy"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
        } finally {
            first.close();
        }
    }

    @Test
    void kvBeyondTheNodesBudgetIsRefused() {
        ModelConfig c = config();
        try (OffloadClient client = new OffloadClient("t", c, List.of(address(worker)), new int[]{1}, WireFormat.F16, 16, 1, Duration.ofSeconds(10))) {
            long perBlock = KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), 16, KvCacheType.F32);
            assertEquals(1 << 20, client.kvBudgetBytes());
            MemoryNodeException e = assertThrows(MemoryNodeException.class, () -> client.allocate((int) ((1 << 20) / perBlock) + 1, 16, "f32"));
            assertTrue(e.getMessage().contains("--kv-cache-memory"), e.getMessage());
        }
    }

    @Test
    void aHelloAskingForAbsurdBuffersIsRefusedInOneLine() throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", worker.port())) {
            var out = new java.io.DataOutputStream(s.getOutputStream());
            Hello huge = new Hello(OffloadProtocol.VERSION, "m", 4, 4096, 4096, 4096, 0, 4096, 1 << 20, WireFormat.F16);
            OffloadProtocol.write(out, OffloadProtocol.Type.HELLO, huge.encode());
            var in = new java.io.DataInputStream(s.getInputStream());
            OffloadProtocol.Frame err = OffloadProtocol.read(in);
            assertEquals(OffloadProtocol.Type.ERROR, err.type());
            String message = OffloadProtocol.readString(err.payload());
            assertTrue(message.contains("activation floats"), message);
        }
        // The node still serves the next compute node.
        try (OffloadClient client = new OffloadClient("t", config(), List.of(address(worker)), new int[]{1}, WireFormat.F16, 16, 1, Duration.ofSeconds(10))) {
            client.allocate(4, 16, "f32");
        }
    }

    static InetSocketAddress address(AttentionWorker w) {
        return new InetSocketAddress("127.0.0.1", w.port());
    }

    static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextDouble(-1, 1);
        return a;
    }
}
