package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.collective.AllReduceKind;
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
        return new TensorParallelGenerator(model).generate(prompt, new Sampler(SamplingParams.greedy(), model.config().vocabSize()),
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
}
