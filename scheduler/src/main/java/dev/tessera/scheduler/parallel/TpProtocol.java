package dev.tessera.scheduler.parallel;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

import dev.tessera.scheduler.sched.SchedulerOutput;

/**
 * Control frames between the master and a worker, on the worker's control connection (the allreduce data travels
 * on the collective's own links). Big-endian:
 *
 * <pre>
 * int  magic 0x54504931 ("TPI1")
 * byte type
 * int  payload length (0 .. MAX_PAYLOAD_BYTES)
 * ...  payload, fields in record order; strings as u16 length + UTF-8
 * int  CRC-32 of type, length and payload
 * </pre>
 *
 * Every field is range-checked on decode; anything else is a {@link ProtocolException} and the connection is closed.
 * Token ids and text never travel here: a step carries, per sequence, its id, row count, first position and block
 * table changes — the scheduler's output without the tokens, which only the master's embedding needs.
 */
public final class TpProtocol {
    public static final int MAGIC = 0x54504931;
    public static final int VERSION = 4;
    static final int MAX_PAYLOAD_BYTES = 4 << 20;
    static final int MAX_SEQUENCES = 1 << 16;
    static final int MAX_BLOCK_ID = (1 << 30) - 1;
    static final int MAX_STRING_BYTES = 8192;

    /** A frame that does not check out; the message names what was wrong. */
    public static final class ProtocolException extends IOException {
        public ProtocolException(String message) { super(message); }
    }

    public sealed interface Message permits Hello, HelloOk, HelloError, Group, Step, StatsRequest, StatsReply, Shutdown,
            NeedShard, ShardBegin, ShardChunk, ShardEnd, ExpertPlan, TokenStep, StepResult, GroupJoined {}

    /** Bytes of an NCCL unique id (ncclUniqueId), as rank 0 makes it and the group frame carries it. */
    public static final int NCCL_ID_BYTES = 128;

    /**
     * Master → worker: who you are in this group, which model and plan, the collective asked for
     * ({@code auto|star|ring|nccl}; the group frame says which one the group uses), and the paged KV
     * memory to hold for your KV heads ({@code numKvBlocks} blocks of {@code kvBlockSize} positions, element type
     * {@code kvCacheType}), addressed by the ids the master's pool assigns.
     */
    public record Hello(int version, int rank, int numDevices, String fingerprint, String plan, String allReduce,
                        int maxBatchTokens, int numKvBlocks, int kvBlockSize, String kvCacheType) implements Message {}

    /**
     * Worker → master: shard verified. {@code collective} is the address the worker offers for the group's TCP links
     * (empty when it needs none), {@code backend} what it computes on ({@code Backend.name()}: "cpu (...)",
     * "cuda:N (...)"), {@code ncclProblem} empty when libnccl loads there, else why not: the master decides on NCCL
     * from these before any rank starts joining it.
     */
    public record HelloOk(String collective, String backend, String ncclProblem) implements Message {}

    /** Worker → master: refused, with a one-line reason. */
    public record HelloError(String message) implements Message {}

    /**
     * Master → worker: the collective the group uses ({@code star|ring|nccl}) and how to join it: for TCP, where each
     * rank is reached (comma-separated host:port in rank order) and an empty id; for NCCL, no addresses and the
     * {@link #NCCL_ID_BYTES}-byte unique id rank 0 made.
     */
    public record Group(String addresses, String collective, byte[] ncclId) implements Message {}

    /**
     * Worker → master, after an NCCL group frame only: the worker's ncclCommInitRank returned; {@code error} is empty
     * when it joined, else the one-line reason it could not.
     */
    public record GroupJoined(String error) implements Message {}

    /** Run one engine step: the scheduler's output, with each sequence's tokens replaced by as many zeros. */
    public record Step(SchedulerOutput output) implements Message {}

    public record StatsRequest() implements Message {}

    public record StatsReply(String summary, int window, int peakResidentBlocks) implements Message {}

    public record Shutdown() implements Message {}

    /** Worker → master, instead of HelloOk: no matching shard here, send it (then the worker answers the hello again). */
    public record NeedShard(String reason) implements Message {}

    /** Master → worker: a shard file of {@code sizeBytes} follows in chunks. */
    public record ShardBegin(String fileName, long sizeBytes) implements Message {}

    /** Master → worker: the next bytes of the shard file (at most {@link #MAX_CHUNK_BYTES}). */
    public record ShardChunk(byte[] data) implements Message {}

    /** Master → worker: the shard is complete; {@code sha256} (hex) of all its bytes, checked before it is used. */
    public record ShardEnd(String sha256) implements Message {}

    /**
     * Master → expert-parallel worker, right after the hello: the mode ({@code coherent|baseline}), the most sequences
     * that need logits in one step, and which device holds each expert, {@code deviceOfExpert[layer * numExperts + expert]}.
     */
    public record ExpertPlan(String mode, int maxLogitRows, int numLayers, int numExperts, int[] deviceOfExpert) implements Message {}

    /** Master → expert-parallel worker: one engine step with its token ids (every device embeds its own rows). */
    public record TokenStep(SchedulerOutput output) implements Message {}

    /**
     * Expert-parallel worker → master, after a step in which it ran sequences of its own: for those that needed logits,
     * in step order, the greedy ids (an argmax-only step) or the logit rows.
     */
    public record StepResult(int[] ids, float[] logits) implements Message {}

    /** A step result may carry many rows of vocabulary-sized logits. */
    static final int MAX_RESULT_BYTES = 256 << 20;

    /** Shard bytes per chunk frame, leaving room in a frame's payload limit. */
    public static final int MAX_CHUNK_BYTES = 60 * 1024;

    private TpProtocol() {}

    public static void write(DataOutputStream out, Message m) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream p = new DataOutputStream(bytes);
        int type = switch (m) {
            case Hello h -> {
                p.writeInt(h.version()); p.writeInt(h.rank()); p.writeInt(h.numDevices());
                string(p, h.fingerprint()); string(p, h.plan()); string(p, h.allReduce());
                p.writeInt(h.maxBatchTokens());
                p.writeInt(h.numKvBlocks()); p.writeInt(h.kvBlockSize()); string(p, h.kvCacheType());
                yield 1;
            }
            case HelloOk o -> { string(p, o.collective()); string(p, o.backend()); string(p, o.ncclProblem()); yield 2; }
            case HelloError e -> { string(p, e.message()); yield 3; }
            case Step s -> { step(p, s.output(), false); yield 5; }
            case StatsRequest r -> 7;
            case StatsReply r -> { string(p, r.summary()); p.writeInt(r.window()); p.writeInt(r.peakResidentBlocks()); yield 8; }
            case Shutdown s -> 9;
            case Group g -> {
                string(p, g.addresses()); string(p, g.collective());
                p.writeShort(g.ncclId().length); p.write(g.ncclId());  // u16 length + raw bytes
                yield 10;
            }
            case NeedShard n -> { string(p, n.reason()); yield 11; }
            case ShardBegin b -> { string(p, b.fileName()); p.writeLong(b.sizeBytes()); yield 12; }
            case ShardChunk c -> {
                if (c.data().length > MAX_CHUNK_BYTES) throw new IllegalArgumentException("shard chunk of " + c.data().length + " bytes");
                p.write(c.data());
                yield 13;
            }
            case ShardEnd e -> { string(p, e.sha256()); yield 14; }
            case ExpertPlan x -> {
                string(p, x.mode()); p.writeInt(x.maxLogitRows()); p.writeInt(x.numLayers()); p.writeInt(x.numExperts()); ints(p, x.deviceOfExpert());
                yield 15;
            }
            case TokenStep t -> { step(p, t.output(), true); yield 16; }
            case StepResult r -> {
                // An id is -1 when a row had no finite logit: sent shifted by one, as every int list here is non-negative.
                int[] shifted = new int[r.ids().length];
                for (int i = 0; i < shifted.length; i++) shifted[i] = r.ids()[i] + 1;
                ints(p, shifted);
                p.writeInt(r.logits().length);
                for (float f : r.logits()) p.writeFloat(f);
                yield 17;
            }
            case GroupJoined j -> { string(p, j.error()); yield 18; }
        };
        p.flush();
        if (bytes.size() > limit(type)) throw new IllegalArgumentException("control frame of " + bytes.size() + " bytes, limit " + limit(type));
        byte[] payload = bytes.toByteArray();
        out.writeInt(MAGIC);
        out.writeByte(type);
        out.writeInt(payload.length);
        out.write(payload);
        out.writeInt(crc(type, payload));
        out.flush();
    }

    /** Reads one frame; a cleanly closed connection before the first byte is an EOFException. */
    public static Message read(DataInputStream in) throws IOException {
        int magic = in.readInt();
        if (magic != MAGIC) throw new ProtocolException(String.format("bad frame magic 0x%08x, expected 0x%08x", magic, MAGIC));
        int type = in.readUnsignedByte();
        int length = in.readInt();
        if (length < 0 || length > limit(type)) throw new ProtocolException("frame payload of " + length + " bytes, limit " + limit(type));
        byte[] payload = new byte[length];
        in.readFully(payload);
        int crc = in.readInt();
        if (crc != crc(type, payload)) throw new ProtocolException("frame type " + type + " fails its CRC-32 check (corrupt or not a Tessera peer)");
        DataInputStream p = new DataInputStream(new ByteArrayInputStream(payload));
        Message m;
        try {
            m = switch (type) {
                case 1 -> {
                    int version = p.readInt();
                    if (version != VERSION) throw new ProtocolException("protocol version " + version + ", this build speaks " + VERSION);
                    int rank = range(p.readInt(), 1, 1023, "rank");
                    int size = range(p.readInt(), 2, 1024, "device count");
                    if (rank >= size) throw new ProtocolException("rank " + rank + " outside a group of " + size);
                    yield new Hello(version, rank, size, string(p), string(p), string(p), range(p.readInt(), 1, 1 << 16, "max batch tokens"),
                            range(p.readInt(), 1, MAX_BLOCK_ID, "KV blocks"), range(p.readInt(), 1, 1 << 16, "KV block size"), string(p));
                }
                case 2 -> new HelloOk(string(p), string(p), string(p));
                case 3 -> new HelloError(string(p));
                case 5 -> new Step(step(p, false));
                case 7 -> new StatsRequest();
                case 8 -> new StatsReply(string(p), range(p.readInt(), 0, 1 << 20, "window"), range(p.readInt(), 0, 1 << 20, "peak blocks"));
                case 9 -> new Shutdown();
                case 10 -> {
                    String addresses = string(p), collective = string(p);
                    if (!collective.equals("star") && !collective.equals("ring") && !collective.equals("nccl"))
                        throw new ProtocolException("group collective '" + collective + "', expected star|ring|nccl");
                    int idBytes = p.readUnsignedShort(), expected = collective.equals("nccl") ? NCCL_ID_BYTES : 0;
                    if (idBytes != expected)
                        throw new ProtocolException("NCCL id of " + idBytes + " bytes in a " + collective + " group frame, expected " + expected);
                    byte[] ncclId = new byte[idBytes];
                    p.readFully(ncclId);
                    yield new Group(addresses, collective, ncclId);
                }
                case 18 -> new GroupJoined(string(p));
                case 11 -> new NeedShard(string(p));
                case 12 -> {
                    String name = string(p);
                    if (name.isEmpty() || !name.endsWith(".gguf") || name.contains("/") || name.contains("\\") || name.startsWith("."))
                        throw new ProtocolException("shard file name '" + name + "' is not a plain *.gguf name");
                    long size = p.readLong();
                    if (size < 1 || size > 1L << 40) throw new ProtocolException("shard size " + size + " outside 1..2^40 bytes");
                    yield new ShardBegin(name, size);
                }
                case 13 -> {
                    if (length < 1 || length > MAX_CHUNK_BYTES) throw new ProtocolException("shard chunk of " + length + " bytes, limit " + MAX_CHUNK_BYTES);
                    yield new ShardChunk(p.readNBytes(length));
                }
                case 14 -> {
                    String hash = string(p);
                    if (!hash.matches("[0-9a-f]{64}")) throw new ProtocolException("shard hash '" + hash + "' is not 64 hex digits");
                    yield new ShardEnd(hash);
                }
                case 15 -> {
                    String mode = string(p);
                    int maxLogitRows = range(p.readInt(), 1, 1 << 16, "logit rows");
                    int layers = range(p.readInt(), 1, 1 << 12, "MoE layers"), experts = range(p.readInt(), 1, 1 << 12, "experts per layer");
                    int[] devices = ints(p, "expert device");
                    if (devices.length != layers * experts) throw new ProtocolException(devices.length + " expert devices for " + layers + " x " + experts + " experts");
                    yield new ExpertPlan(mode, maxLogitRows, layers, experts, devices);
                }
                case 16 -> new TokenStep(step(p, true));
                case 17 -> {
                    int[] ids = ints(p, "token id");
                    for (int i = 0; i < ids.length; i++) ids[i]--;
                    int n = range(p.readInt(), 0, MAX_RESULT_BYTES / 4, "logit count");
                    if (n * 4L > p.available()) throw new ProtocolException(n + " logits claimed, " + p.available() + " bytes left");
                    float[] logits = new float[n];
                    for (int i = 0; i < n; i++) logits[i] = p.readFloat();
                    yield new StepResult(ids, logits);
                }
                default -> throw new ProtocolException("unknown frame type " + type);
            };
        } catch (EOFException e) {
            throw new ProtocolException("frame type " + type + " payload of " + length + " bytes is too short");
        }
        if (p.available() != 0) throw new ProtocolException("frame type " + type + " has " + p.available() + " trailing bytes");
        return m;
    }

    private static int crc(int type, byte[] payload) {
        CRC32 crc = new CRC32();
        crc.update(type);
        crc.update(payload.length >>> 24); crc.update(payload.length >>> 16); crc.update(payload.length >>> 8); crc.update(payload.length);
        crc.update(payload);
        return (int) crc.getValue();
    }

    private static int limit(int type) {
        return type == 17 ? MAX_RESULT_BYTES : MAX_PAYLOAD_BYTES;
    }

    private static void step(DataOutputStream p, SchedulerOutput o, boolean withTokens) throws IOException {
        p.writeBoolean(o.argmaxOnly());
        ints(p, o.released());
        p.writeInt(o.sequences().size());
        for (SchedulerOutput.ScheduledSequence s : o.sequences()) {
            p.writeInt(s.id());
            p.writeInt(s.tokens().length);
            if (withTokens) for (int t : s.tokens()) p.writeInt(t);
            p.writeInt(s.startPosition());
            p.writeInt(s.tableFrom());
            ints(p, s.newBlocks());
            p.writeInt(s.logitRows());
        }
    }

    private static SchedulerOutput step(DataInputStream p, boolean withTokens) throws IOException {
        boolean argmaxOnly = p.readBoolean();
        int[] released = ints(p, "released sequence");
        int n = range(p.readInt(), 1, MAX_SEQUENCES, "sequences");
        List<SchedulerOutput.ScheduledSequence> seqs = new ArrayList<>(n);
        int rows = 0;
        for (int i = 0; i < n; i++) {
            int id = range(p.readInt(), 0, Integer.MAX_VALUE, "sequence id");
            int count = range(p.readInt(), 1, 1 << 16, "token rows");
            rows += count;
            if (rows > 1 << 16) throw new ProtocolException("step of more than " + (1 << 16) + " token rows");
            int[] tokens = new int[count];
            if (withTokens) {
                if (count * 4L > p.available()) throw new ProtocolException(count + " token ids claimed, " + p.available() + " bytes left");
                for (int t = 0; t < count; t++) tokens[t] = range(p.readInt(), 0, Integer.MAX_VALUE, "token id");
            }
            int start = range(p.readInt(), 0, 1 << 24, "start position");
            int from = range(p.readInt(), 0, 1 << 24, "block table index");
            int[] blocks = ints(p, "KV block id");
            for (int b : blocks) range(b, 0, MAX_BLOCK_ID, "KV block id");
            seqs.add(new SchedulerOutput.ScheduledSequence(id, tokens, start, from, blocks, range(p.readInt(), 0, count, "logit rows")));
        }
        return new SchedulerOutput(seqs, released, argmaxOnly);
    }

    private static void ints(DataOutputStream p, int[] v) throws IOException {
        p.writeInt(v.length);
        for (int x : v) p.writeInt(x);
    }

    private static int[] ints(DataInputStream p, String what) throws IOException {
        int n = range(p.readInt(), 0, MAX_PAYLOAD_BYTES / 4, what + " count");
        if (n * 4L > p.available()) throw new ProtocolException(n + " " + what + "s claimed, " + p.available() + " bytes left");
        int[] v = new int[n];
        for (int i = 0; i < n; i++) {
            v[i] = p.readInt();
            if (v[i] < 0) throw new ProtocolException(what + " " + v[i] + " is negative");
        }
        return v;
    }

    private static int range(int v, int min, int max, String what) throws ProtocolException {
        if (v < min || v > max) throw new ProtocolException(what + " " + v + " outside " + min + ".." + max);
        return v;
    }

    private static void string(DataOutputStream p, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > MAX_STRING_BYTES) throw new IllegalArgumentException("string of " + b.length + " bytes in a control frame");
        p.writeShort(b.length);
        p.write(b);
    }

    private static String string(DataInputStream p) throws IOException {
        int n = p.readUnsignedShort();
        if (n > MAX_STRING_BYTES) throw new ProtocolException("string of " + n + " bytes, limit " + MAX_STRING_BYTES);
        byte[] b = new byte[n];
        p.readFully(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
