package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.collective.LinkEmulator;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.scheduler.engine.SequenceGenerator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy output of the tensor-parallel model over 1–4 devices (real worker processes on loopback), with the sliding
 * window (W=2) and without (W=0), must equal the single-process LlamaModel token for token.
 */
class TensorParallelModelTest {
    static final Path MODELS = Path.of(System.getProperty("tessera.models", "../../shared/models"));
    static final int NUM_TOKENS = 24;
    static final int[][] WEIGHTS = {{1}, {1, 1}, {1, 1, 2}, {1, 1, 1, 1}};

    @TempDir
    static Path temp;
    static Path stories, synth, shards;
    static int[] storiesPrompt, synthPrompt, storiesReference, synthReference;
    static WorkerProcesses windowed, whole;

    @BeforeAll
    static void setUp() throws Exception {
        stories = MODELS.resolve("stories260K.gguf");
        assertTrue(Files.exists(stories), "missing test model " + stories);
        synth = temp.resolve("tiny-q8_0.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.Q8_0, 11).write(MODELS.resolve(SynthPreset.DEFAULT_VOCAB), synth, null);
        shards = Files.createDirectories(temp.resolve("shards"));
        for (Path model : List.of(stories, synth)) {
            try (GgufFile f = GgufFile.open(model)) {
                ModelConfig c = ModelConfig.fromGguf(f);
                for (int[] w : WEIGHTS) if (w.length > 1) ShardWriter.writeAll(f, c, TensorParallelModel.plan(f, c, w), shards, null);
            }
        }
        try (LoadedModel m = ModelLoader.load(stories, new CpuBackend(1), 64)) {
            storiesPrompt = m.tokenizer().encode("Once upon a time", true, false);
            storiesReference = reference(m, storiesPrompt);
        }
        synthPrompt = new int[]{1, 450, 4996, 17354, 1701, 29889};
        try (LoadedModel m = ModelLoader.load(synth, new CpuBackend(1), 64)) {
            synthReference = reference(m, synthPrompt);
        }
        windowed = new WorkerProcesses(shards, 2);
        whole = new WorkerProcesses(shards, 0);
        for (int i = 0; i < 3; i++) { windowed.start(0); whole.start(0); }
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (windowed != null) windowed.close();
        if (whole != null) whole.close();
    }

    static int[] reference(LoadedModel m, int[] prompt) {
        return new SequenceGenerator(m.model()).generate(prompt, new Sampler(SamplingParams.greedy(), m.config().vocabSize()),
                NUM_TOKENS, t -> false, t -> true).tokens();
    }

    static TensorParallelModel master(GgufFile f, List<InetSocketAddress> workers, int[] weights, AllReduceKind kind, int window) {
        ModelConfig c = ModelConfig.fromGguf(f);
        return new TensorParallelModel(f, c, new CpuBackend(1), workers, TensorParallelModel.plan(f, c, weights), kind, window, 64, Duration.ofSeconds(20));
    }

    static int[] generate(TensorParallelModel model, int[] prompt) {
        return new SequenceGenerator(model).generate(prompt, new Sampler(SamplingParams.greedy(), model.config().vocabSize()),
                NUM_TOKENS, t -> false, t -> true).tokens();
    }

    private void checkAllDeviceCounts(Path modelPath, int[] prompt, int[] reference, WorkerProcesses workers, int window) {
        try (GgufFile f = GgufFile.open(modelPath)) {
            for (int[] w : WEIGHTS) {
                try (TensorParallelModel model = master(f, workers.addresses(w.length - 1), w, AllReduceKind.STAR, window)) {
                    int[] tokens = generate(model, prompt);
                    assertArrayEquals(reference, tokens, modelPath.getFileName() + " on " + w.length + " devices " + Arrays.toString(w) + ", W=" + window);
                    for (TpProtocol.StatsReply s : model.stats()) {
                        if (window == 2) assertTrue(s.peakResidentBlocks() <= 2, s.summary() + ": peak " + s.peakResidentBlocks() + " blocks");
                        System.err.println("  " + s.summary() + " (peak " + s.peakResidentBlocks() + " blocks)");
                    }
                }
            }
        }
    }

    @Test
    void storiesMatchesSingleProcessWithWindowOfTwo() {
        checkAllDeviceCounts(stories, storiesPrompt, storiesReference, windowed, 2);
    }

    @Test
    void storiesMatchesSingleProcessWithEverythingResident() {
        checkAllDeviceCounts(stories, storiesPrompt, storiesReference, whole, 0);
    }

    @Test
    void synthQ8MatchesSingleProcessWithWindowOfTwo() {
        checkAllDeviceCounts(synth, synthPrompt, synthReference, windowed, 2);
    }

    @Test
    void synthQ8MatchesSingleProcessWithEverythingResident() {
        checkAllDeviceCounts(synth, synthPrompt, synthReference, whole, 0);
    }

    @Test
    void ringAllReduceGivesTheSameTokens() {
        try (GgufFile f = GgufFile.open(stories);
             TensorParallelModel model = master(f, windowed.addresses(3), new int[]{1, 1, 1, 1}, AllReduceKind.RING, 2)) {
            assertArrayEquals(storiesReference, generate(model, storiesPrompt));
            assertArrayEquals(storiesReference, generate(model, storiesPrompt), "second sequence on the same group");
        }
    }

    @Test
    void workerWithoutTheRightShardRefusesNamingItself() throws Exception {
        Path other = temp.resolve("stories-modified.gguf");
        byte[] bytes = Files.readAllBytes(stories);
        bytes[bytes.length - 100] ^= 1;
        Files.write(other, bytes);
        try (GgufFile f = GgufFile.open(other);
             TensorParallelModel model = master(f, whole.addresses(1), new int[]{1, 1}, AllReduceKind.STAR, 0)) {
            TensorParallelModel.TensorParallelException e = assertThrows(TensorParallelModel.TensorParallelException.class, () -> generate(model, storiesPrompt));
            InetSocketAddress a = whole.address(0);
            assertTrue(e.getMessage().contains("worker 127.0.0.1:" + a.getPort() + " (rank 1) refused: no shard in"), e.getMessage());
        }
    }

    @Test
    void everyLinkCanPassThroughItsOwnLinkEmulator() throws Exception {
        int collectivePort = freePortOutsideEphemeralRange();
        InetSocketAddress collective = new InetSocketAddress("127.0.0.1", collectivePort);
        List<LinkEmulator> control = new ArrayList<>(), allReduce = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                control.add(new LinkEmulator(new InetSocketAddress("127.0.0.1", 0), windowed.address(i), Duration.ofMillis(1), 300_000_000));
                allReduce.add(new LinkEmulator(new InetSocketAddress("127.0.0.1", 0), collective, Duration.ofMillis(1), 300_000_000));
            }
            try (GgufFile f = GgufFile.open(stories)) {
                ModelConfig c = ModelConfig.fromGguf(f);
                try (TensorParallelModel model = new TensorParallelModel(f, c, new CpuBackend(1), control.stream().map(LinkEmulator::address).toList(),
                        TensorParallelModel.plan(f, c, new int[]{1, 1, 1, 1}), AllReduceKind.STAR, 2, 64, Duration.ofSeconds(20),
                        collective, allReduce.stream().map(LinkEmulator::address).toList())) {
                    assertArrayEquals(storiesReference, generate(model, storiesPrompt));
                }
            }
            for (int i = 0; i < 3; i++) {
                assertEquals(1, control.get(i).numAccepted(), "control link of worker " + (i + 1));
                assertEquals(1, allReduce.get(i).numAccepted(), "allreduce link of worker " + (i + 1) + " went around its emulator");
            }
        } finally {
            for (LinkEmulator l : control) l.close();
            for (LinkEmulator l : allReduce) l.close();
        }
    }

    @Test
    void allReduceRoutesMustNameEveryWorker() {
        try (GgufFile f = GgufFile.open(stories)) {
            ModelConfig c = ModelConfig.fromGguf(f);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new TensorParallelModel(f, c, new CpuBackend(1),
                    whole.addresses(2), TensorParallelModel.plan(f, c, new int[]{1, 1, 1}), AllReduceKind.STAR, 0, 64, Duration.ofSeconds(5),
                    new InetSocketAddress("127.0.0.1", 0), List.of(whole.address(0))));
            assertTrue(e.getMessage().contains("1 rank-0 allreduce addresses for 2 workers"), e.getMessage());
        }
    }

    @Test
    void masterStreamsMissingShardsToWorkersThatAskForThem() throws Exception {
        Path empty = Files.createDirectories(temp.resolve("received-shards"));
        try (WorkerProcesses receiving = new WorkerProcesses(empty, 2, true)) {
            receiving.start(0);
            receiving.start(0);
            try (GgufFile f = GgufFile.open(stories)) {
                try (TensorParallelModel model = master(f, receiving.addresses(2), new int[]{1, 1, 2}, AllReduceKind.STAR, 2)) {
                    assertArrayEquals(storiesReference, generate(model, storiesPrompt), "first connection, shards streamed");
                }
                List<Path> stored;
                try (var files = Files.list(empty)) {
                    stored = files.sorted().toList();
                }
                assertEquals(List.of(empty.resolve("stories260K.tp1-1-2.rank1.gguf"), empty.resolve("stories260K.tp1-1-2.rank2.gguf")), stored);
                for (int rank = 1; rank <= 2; rank++) {
                    assertArrayEquals(Files.readAllBytes(shards.resolve("stories260K.tp1-1-2.rank" + rank + ".gguf")),
                            Files.readAllBytes(empty.resolve("stories260K.tp1-1-2.rank" + rank + ".gguf")), "received shard of rank " + rank);
                }
                long[] modified = {Files.getLastModifiedTime(stored.get(0)).toMillis(), Files.getLastModifiedTime(stored.get(1)).toMillis()};
                Thread.sleep(20);
                try (TensorParallelModel model = master(f, receiving.addresses(2), new int[]{1, 1, 2}, AllReduceKind.STAR, 0)) {
                    assertArrayEquals(storiesReference, generate(model, storiesPrompt), "second connection, stored shards reused");
                }
                assertEquals(modified[0], Files.getLastModifiedTime(stored.get(0)).toMillis(), "rank 1 shard was sent again");
                assertEquals(modified[1], Files.getLastModifiedTime(stored.get(1)).toMillis(), "rank 2 shard was sent again");
            }
        }
    }

    @Test
    void shardTransferFramesAreChecked() throws Exception {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.DataOutputStream out = new java.io.DataOutputStream(bytes);
        TpProtocol.write(out, new TpProtocol.ShardBegin("x.gguf", 3));
        TpProtocol.write(out, new TpProtocol.ShardChunk(new byte[]{1, 2, 3}));
        TpProtocol.write(out, new TpProtocol.ShardEnd("0".repeat(64)));
        Path dir = Files.createDirectories(temp.resolve("bad-hash"));
        var in = new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()));
        TpProtocol.ProtocolException e = assertThrows(TpProtocol.ProtocolException.class, () -> ShardReceiver.receive(in, dir, System.err));
        assertTrue(e.getMessage().contains("has SHA-256"), e.getMessage());
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "a shard with a wrong hash was kept");
        }
        bytes.reset();
        TpProtocol.write(out, new TpProtocol.ShardBegin("../escape.gguf", 3));
        var in2 = new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()));
        assertThrows(TpProtocol.ProtocolException.class, () -> TpProtocol.read(in2));
    }

    /**
     * A port free now and below Linux's ephemeral range (32768 on), so the emulators' port-0 listeners opened before
     * the master binds it cannot take it (a port from ServerSocket(0) once did).
     */
    private static int freePortOutsideEphemeralRange() throws java.io.IOException {
        java.util.SplittableRandom random = new java.util.SplittableRandom();
        for (int attempt = 0; attempt < 100; attempt++) {
            int port = 20_000 + random.nextInt(12_000);
            try (ServerSocket probe = new ServerSocket()) {
                probe.bind(new InetSocketAddress("127.0.0.1", port));
                return port;
            } catch (java.net.BindException busy) {
                // taken: try another
            }
        }
        throw new java.io.IOException("no free port in 20000-31999");
    }
}
