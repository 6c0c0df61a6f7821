package dev.tessera.scheduler.parallel;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Control frames between the master and a worker, on the worker's control connection (the allreduce data travels
 * on the collective's own links). Big-endian:
 *
 * <pre>
 * int  magic 0x54504931 ("TPI1")
 * byte type
 * int  payload length (0 .. MAX_PAYLOAD_BYTES)
 * ...  payload, fields in record order; strings as u16 length + UTF-8
 * </pre>
 *
 * Every field is range-checked on decode; anything else is a {@link ProtocolException} and the connection is closed.
 * Token ids and text never travel here: a step carries only its row count and first position.
 */
public final class TpProtocol {
    public static final int MAGIC = 0x54504931;
    public static final int VERSION = 1;
    static final int MAX_PAYLOAD_BYTES = 1 << 16;
    static final int MAX_STRING_BYTES = 8192;

    /** A frame that does not check out; the message names what was wrong. */
    public static final class ProtocolException extends IOException {
        public ProtocolException(String message) { super(message); }
    }

    public sealed interface Message permits Hello, HelloOk, HelloError, Group, Begin, Step, End, StatsRequest, StatsReply, Shutdown,
            NeedShard, ShardBegin, ShardChunk, ShardEnd {}

    /** Master → worker: who you are in this group, which model and plan, how to build the collective. */
    public record Hello(int version, int rank, int numDevices, String fingerprint, String plan, String allReduce,
                        int maxBatchTokens) implements Message {}

    /** Worker → master: shard verified; {@code collective} is what the worker contributes to the group set-up. */
    public record HelloOk(String collective) implements Message {}

    /** Worker → master: refused, with a one-line reason. */
    public record HelloError(String message) implements Message {}

    /** Master → worker: where each rank of the collective is reached, comma-separated host:port in rank order. */
    public record Group(String addresses) implements Message {}

    /** A new sequence of at most {@code capacity} positions. */
    public record Begin(int capacity) implements Message {}

    /** Run every layer over {@code numTokens} rows at positions start..start+numTokens-1. */
    public record Step(int numTokens, int startPosition) implements Message {}

    public record End() implements Message {}

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
                yield 1;
            }
            case HelloOk o -> { string(p, o.collective()); yield 2; }
            case HelloError e -> { string(p, e.message()); yield 3; }
            case Begin b -> { p.writeInt(b.capacity()); yield 4; }
            case Step s -> { p.writeInt(s.numTokens()); p.writeInt(s.startPosition()); yield 5; }
            case End e -> 6;
            case StatsRequest r -> 7;
            case StatsReply r -> { string(p, r.summary()); p.writeInt(r.window()); p.writeInt(r.peakResidentBlocks()); yield 8; }
            case Shutdown s -> 9;
            case Group g -> { string(p, g.addresses()); yield 10; }
            case NeedShard n -> { string(p, n.reason()); yield 11; }
            case ShardBegin b -> { string(p, b.fileName()); p.writeLong(b.sizeBytes()); yield 12; }
            case ShardChunk c -> {
                if (c.data().length > MAX_CHUNK_BYTES) throw new IllegalArgumentException("shard chunk of " + c.data().length + " bytes");
                p.write(c.data());
                yield 13;
            }
            case ShardEnd e -> { string(p, e.sha256()); yield 14; }
        };
        p.flush();
        out.writeInt(MAGIC);
        out.writeByte(type);
        out.writeInt(bytes.size());
        bytes.writeTo(out);
        out.flush();
    }

    /** Reads one frame; a cleanly closed connection before the first byte is an EOFException. */
    public static Message read(DataInputStream in) throws IOException {
        int magic = in.readInt();
        if (magic != MAGIC) throw new ProtocolException(String.format("bad frame magic 0x%08x, expected 0x%08x", magic, MAGIC));
        int type = in.readUnsignedByte();
        int length = in.readInt();
        if (length < 0 || length > MAX_PAYLOAD_BYTES) throw new ProtocolException("frame payload of " + length + " bytes, limit " + MAX_PAYLOAD_BYTES);
        byte[] payload = new byte[length];
        in.readFully(payload);
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
                    yield new Hello(version, rank, size, string(p), string(p), string(p), range(p.readInt(), 1, 1 << 16, "max batch tokens"));
                }
                case 2 -> new HelloOk(string(p));
                case 3 -> new HelloError(string(p));
                case 4 -> new Begin(range(p.readInt(), 1, 1 << 24, "capacity"));
                case 5 -> new Step(range(p.readInt(), 1, 1 << 16, "token rows"), range(p.readInt(), 0, 1 << 24, "start position"));
                case 6 -> new End();
                case 7 -> new StatsRequest();
                case 8 -> new StatsReply(string(p), range(p.readInt(), 0, 1 << 20, "window"), range(p.readInt(), 0, 1 << 20, "peak blocks"));
                case 9 -> new Shutdown();
                case 10 -> new Group(string(p));
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
                default -> throw new ProtocolException("unknown frame type " + type);
            };
        } catch (EOFException e) {
            throw new ProtocolException("frame type " + type + " payload of " + length + " bytes is too short");
        }
        if (p.available() != 0) throw new ProtocolException("frame type " + type + " has " + p.available() + " trailing bytes");
        return m;
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
