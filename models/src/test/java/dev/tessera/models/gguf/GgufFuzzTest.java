package dev.tessera.models.gguf;

import dev.tessera.models.ModelLoader;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutated copies of stories260K.gguf must either load or fail with one GgufException line that starts with the file
 * name: never another exception, an OutOfMemoryError or a hang.
 */
class GgufFuzzTest {
    static final long TIMEOUT_SECONDS = 20;

    static byte[] original;
    static List<Field> fields;
    static int headerEnd;
    static Path dir;
    static ExecutorService executor;
    static final AtomicInteger counter = new AtomicInteger();

    /** A fixed-width number in the header: a count, a length, a type id, a dimension or an offset. */
    record Field(String what, int offset, int width) {}

    @BeforeContainer
    static void load() throws IOException {
        original = Files.readAllBytes(GgufReaderTest.stories());
        fields = new ArrayList<>();
        headerEnd = scanHeader(original, fields);
        dir = Files.createTempDirectory("gguf-fuzz");
        executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "gguf-fuzz");
            t.setDaemon(true); // a hung check must not keep the test JVM alive
            return t;
        });
    }

    @AfterContainer
    static void cleanUp() throws IOException {
        executor.shutdownNow();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    // ---- properties -------------------------------------------------------------------------------------------

    @Property(tries = 150)
    void headerBitFlips(@ForAll @Size(min = 1, max = 8) List<@IntRange(min = 0, max = Integer.MAX_VALUE) Integer> positions) {
        byte[] b = original.clone();
        for (int p : positions) {
            int bit = p & 7;
            int at = (p >>> 3) % headerEnd;
            b[at] ^= (byte) (1 << bit);
        }
        checkLoadsOrFailsCleanly(b);
    }

    @Property(tries = 100)
    void headerByteOverwrites(@ForAll @IntRange(min = 0, max = 14175) int at, @ForAll @Size(min = 1, max = 16) byte[] junk) {
        byte[] b = original.clone();
        System.arraycopy(junk, 0, b, at, Math.min(junk.length, b.length - at));
        checkLoadsOrFailsCleanly(b);
    }

    @Property(tries = 60)
    void truncation(@ForAll @IntRange(min = 0, max = 1185375) int length) {
        checkLoadsOrFailsCleanly(Arrays.copyOf(original, length));
    }

    @Property(tries = 150)
    void hugeOrOddNumbersInHeaderFields(@ForAll("fieldIndex") int index, @ForAll("oddNumbers") long value) {
        byte[] b = original.clone();
        Field f = fields.get(index);
        put(b, f, value);
        checkLoadsOrFailsCleanly(b);
    }

    @Property(tries = 30)
    void renamedArchitecture(@ForAll("architectureNames") String name) {
        byte[] renamed = withArchitecture(name);
        String message = checkLoadsOrFailsCleanly(renamed);
        if (!name.equalsIgnoreCase("llama") && !name.equalsIgnoreCase("qwen2")) assertNotNull(message, "architecture '" + name + "' was accepted");
    }

    @Provide
    Arbitrary<Integer> fieldIndex() {
        return Arbitraries.integers().between(0, fields.size() - 1);
    }

    @Provide
    Arbitrary<Long> oddNumbers() {
        return Arbitraries.oneOf(
                Arbitraries.of(0L, 1L, 4L, 5L, 99L, 0xFFL, 0xFFFF_FFFFL, 0x8000_0000L, 1L << 32, 1L << 40, 1L << 62,
                        Long.MAX_VALUE, -1L, Long.MIN_VALUE, 1185376L, 14176L),
                Arbitraries.longs());
    }

    @Provide
    Arbitrary<String> architectureNames() {
        return Arbitraries.oneOf(
                Arbitraries.of("llama", "Llama", "llama2", "qwen", "gpt2", "", "llama\n", "l"),
                Arbitraries.strings().ofMinLength(0).ofMaxLength(20));
    }

    // ---- one example per error class ---------------------------------------------------------------------------

    @Example
    void unmodifiedFileLoads() {
        assertEquals(null, checkLoadsOrFailsCleanly(original));
    }

    @Example
    void badMagic() {
        byte[] b = original.clone();
        b[3] = 'X';
        assertMessage(b, "bad magic 0x58554747", "not a GGUF file");
    }

    @Example
    void version1And4() {
        byte[] b = original.clone();
        putInt(b, 4, 1);
        assertMessage(b, "unsupported GGUF version 1, expected 2 or 3");
        putInt(b, 4, 4);
        assertMessage(b, "unsupported GGUF version 4, expected 2 or 3");
        putInt(b, 4, Integer.reverseBytes(3));
        assertMessage(b, "unsupported GGUF version 50331648", "big-endian");
    }

    @Example
    void truncatedHeader() {
        assertMessage(Arrays.copyOf(original, 0), "0 bytes, too short for a GGUF header");
        assertMessage(Arrays.copyOf(original, 20), "truncated header: metadata count at byte 16 needs 8 bytes, file is 20 bytes");
        assertMessage(Arrays.copyOf(original, 5000), "tokenizer.ggml.tokens", "truncated header");
        assertMessage(Arrays.copyOf(original, 14000), "truncated header");
        assertMessage(Arrays.copyOf(original, 14100), "truncated header");
    }

    @Example
    void tensorDataPastEndOfFile() {
        byte[] b = Arrays.copyOf(original, original.length - 100);
        assertMessage(b, "ends at byte 1185376, file is 1185276 bytes (tensor data past end of file)");
    }

    @Example
    void absurdCounts() {
        byte[] b = original.clone();
        putLong(b, 8, 1L << 62);
        assertMessage(b, "absurd tensor count 4611686018427387904");
        b = original.clone();
        putLong(b, 16, -1L);
        assertMessage(b, "absurd metadata count 18446744073709551615");
        b = original.clone();
        Field tokensLength = fieldNamed("array length of tokenizer.ggml.tokens");
        put(b, tokensLength, 1L << 40);
        assertMessage(b, "tokenizer.ggml.tokens claims an absurd 1099511627776 elements");
        b = original.clone();
        put(b, fieldNamed("dimension 1 of token_embd.weight"), 1L << 33);
        assertMessage(b, "tensor token_embd.weight has absurd dimension 8589934592");
        b = original.clone();
        put(b, fieldNamed("dimension 1 of token_embd.weight"), 1L << 30);
        assertMessage(b, "tensor token_embd.weight has absurd shape [64, 1073741824] for a file of 1185376 bytes");
        b = original.clone();
        put(b, fieldNamed("string length of metadata key 0"), Long.MAX_VALUE);
        assertMessage(b, "claims an absurd string of 9223372036854775807 bytes");
    }

    @Example
    void unknownTensorType99() {
        byte[] b = original.clone();
        put(b, fieldNamed("type of blk.0.attn_q.weight"), 99);
        assertMessage(b, "tensor blk.0.attn_q.weight has unknown tensor type 99");
    }

    @Example
    void aGgmlTypeTesseraCannotRunIsNamed() {
        byte[] b = original.clone();
        put(b, fieldNamed("type of blk.0.attn_q.weight"), 16);
        assertMessage(b, "tensor blk.0.attn_q.weight has type IQ2_XXS (ggml type 16), which Tessera cannot compute with; it runs F32, F16,");
    }

    @Example
    void renamedArchitectureIsUnsupported() {
        assertMessage(withArchitecture("xlama"), "unsupported architecture 'xlama'");
    }

    @Example
    void controlCharactersInNamesStayOnOneLine() {
        byte[] b = original.clone();
        Field key = fieldNamed("string length of metadata key 0");
        b[key.offset() + 8] = '\n'; // first byte of "tokenizer.ggml.tokens"
        putInt(b, key.offset() + 8 + 21, 77); // and give it an unknown value type
        assertMessage(b, "metadata \\u000aokenizer.ggml.tokens has unknown value type 77");
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    /** Writes the bytes to a fresh file and checks it; returns the error message, or null when the file loaded. */
    static String checkLoadsOrFailsCleanly(byte[] bytes) {
        String name = "mutant-" + counter.incrementAndGet() + ".gguf";
        Path file = dir.resolve(name);
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Future<?> run = executor.submit(() -> ModelLoader.check(file));
        try {
            run.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            return null;
        } catch (TimeoutException e) {
            run.cancel(true);
            return fail(name + ": ModelLoader.check did not finish within " + TIMEOUT_SECONDS + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fail("interrupted");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (!(cause instanceof GgufException)) throw new AssertionError(name + ": expected GgufException, got " + cause, cause);
            String message = cause.getMessage();
            assertTrue(message.startsWith(name + ": "), "message does not start with the file name: " + message);
            assertFalse(message.contains("\n") || message.contains("\r"), "message is not one line: " + message);
            assertTrue(message.length() < 400, "message is too long: " + message);
            return message;
        } finally {
            try {
                Files.deleteIfExists(file);
            } catch (IOException ignored) {
                // Still mapped on a platform that forbids deleting mapped files; the container cleanup retries.
            }
        }
    }

    static void assertMessage(byte[] bytes, String... parts) {
        String message = checkLoadsOrFailsCleanly(bytes);
        assertNotNull(message, "file was accepted, expected an error containing " + Arrays.toString(parts));
        for (String part : parts) assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
    }

    /** stories260K re-written with another general.architecture (any length) and the keys renamed to match. */
    static byte[] withArchitecture(String arch) {
        try (GgufFile src = GgufFile.open(GgufReaderTest.stories())) {
            Map<String, GgufValue> md = new LinkedHashMap<>();
            src.metadata().forEach((k, v) -> md.put(k.startsWith("llama.") ? arch + k.substring(5) : k, v));
            md.put("general.architecture", GgufValue.ofString(arch));
            GgufWriter w = new GgufWriter().metadata(md);
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            Path out = dir.resolve("arch-" + counter.incrementAndGet() + ".gguf");
            w.write(out, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
            byte[] bytes = Files.readAllBytes(out);
            Files.delete(out);
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Field fieldNamed(String what) {
        return fields.stream().filter(f -> f.what().equals(what)).findFirst().orElseThrow(() -> new AssertionError("no field " + what));
    }

    static void put(byte[] b, Field f, long value) {
        if (f.width() == 4) putInt(b, f.offset(), (int) value);
        else putLong(b, f.offset(), value);
    }

    static void putInt(byte[] b, int at, int v) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, v);
    }

    static void putLong(byte[] b, int at, long v) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
    }

    /** Walks the header independently of GgufReader, recording every numeric field; returns where the header ends. */
    static int scanHeader(byte[] bytes, List<Field> out) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.position(4);
        out.add(new Field("version", 4, 4));
        b.getInt();
        out.add(new Field("tensor count", 8, 8));
        long numTensors = b.getLong();
        out.add(new Field("metadata count", 16, 8));
        long numKv = b.getLong();
        for (int i = 0; i < numKv; i++) {
            String key = string(b, out, "string length of metadata key " + i);
            out.add(new Field("type of " + key, b.position(), 4));
            value(b, out, key, b.getInt());
        }
        for (int i = 0; i < numTensors; i++) {
            String name = string(b, out, "string length of tensor name " + i);
            out.add(new Field("dimension count of " + name, b.position(), 4));
            int numDims = b.getInt();
            for (int d = 0; d < numDims; d++) {
                out.add(new Field("dimension " + d + " of " + name, b.position(), 8));
                b.getLong();
            }
            out.add(new Field("type of " + name, b.position(), 4));
            b.getInt();
            out.add(new Field("offset of " + name, b.position(), 8));
            b.getLong();
        }
        return b.position();
    }

    private static void value(ByteBuffer b, List<Field> out, String key, int type) {
        GgufType t = GgufType.fromId(type);
        switch (t) {
            case STRING -> string(b, out, "string length of " + key);
            case ARRAY -> {
                out.add(new Field("array type of " + key, b.position(), 4));
                int et = b.getInt();
                out.add(new Field("array length of " + key, b.position(), 8));
                long n = b.getLong();
                for (long i = 0; i < n; i++) value(b, i < 4 ? out : new ArrayList<>(), key + "[" + i + "]", et);
            }
            default -> b.position(b.position() + t.scalarBytes());
        }
    }

    private static String string(ByteBuffer b, List<Field> out, String what) {
        out.add(new Field(what, b.position(), 8));
        int n = (int) b.getLong();
        byte[] s = new byte[n];
        b.get(s);
        return new String(s, java.nio.charset.StandardCharsets.UTF_8);
    }
}
