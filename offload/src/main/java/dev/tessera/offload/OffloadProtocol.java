package dev.tessera.offload;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

/**
 * Frames between a compute node and a memory node, one connection per memory node, little-endian:
 *
 * <pre>
 * int  magic 0x314D414C ("LAM1" on the wire)
 * byte type ({@link Type})
 * int  payload length (0 .. MAX_PAYLOAD_BYTES)
 * ...  payload
 * int  CRC-32 of type, length and payload
 * </pre>
 *
 * The compute node sends HELLO, then ALLOCATE, then per step one STEP (what changed: sequences, positions, block
 * tables) and per layer and micro-batch one ATTEND (the new q, k, v rows of the node's heads); the memory node answers
 * each ATTEND with an OUTPUT (the attention rows) in order, or an ERROR after which it closes the connection. Sizes are
 * checked before anything is allocated; a bad frame ends the connection.
 */
public final class OffloadProtocol {
    public static final int MAGIC = 0x314D414C;
    public static final int VERSION = 1;
    public static final int MAX_PAYLOAD_BYTES = 256 << 20;
    static final int HEADER_BYTES = 9;

    /** Frame types; the byte on the wire is the ordinal plus one. */
    public enum Type {
        HELLO, HELLO_OK, ERROR, ALLOCATE, ALLOCATED, STEP, ATTEND, OUTPUT, RESET;

        byte code() { return (byte) (ordinal() + 1); }

        static Type of(int code) throws ProtocolException {
            if (code < 1 || code > values().length) throw new ProtocolException("unknown frame type " + code);
            return values()[code - 1];
        }
    }

    /** A frame that does not check out; the message says what was wrong. */
    public static final class ProtocolException extends IOException {
        public ProtocolException(String message) { super(message); }
    }

    /** A received frame: its type and a little-endian view of its payload. */
    public record Frame(Type type, ByteBuffer payload) {
        public Frame expect(Type expected) throws ProtocolException {
            if (type == Type.ERROR) throw new ProtocolException(readString(payload));
            if (type != expected) throw new ProtocolException("expected a " + expected + " frame, got " + type);
            return this;
        }
    }

    private OffloadProtocol() {}

    /** A payload buffer of {@code capacity} bytes, little-endian. */
    public static ByteBuffer payload(int capacity) {
        return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Writes one frame of {@code payload}'s bytes [0, position). */
    public static void write(OutputStream out, Type type, ByteBuffer payload) throws IOException {
        int length = payload.position();
        if (length > MAX_PAYLOAD_BYTES) throw new ProtocolException(type + " payload of " + length + " bytes, limit " + MAX_PAYLOAD_BYTES);
        ByteBuffer head = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        head.putInt(MAGIC).put(type.code()).putInt(length);
        CRC32 crc = new CRC32();
        crc.update(head.array(), 4, 5);
        crc.update(payload.array(), payload.arrayOffset(), length);
        out.write(head.array());
        out.write(payload.array(), payload.arrayOffset(), length);
        ByteBuffer tail = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue());
        out.write(tail.array());
        out.flush();
    }

    /** Reads one frame; EOF before its first byte is an {@link EOFException}, anything malformed a ProtocolException. */
    public static Frame read(DataInputStream in) throws IOException {
        byte[] head = new byte[HEADER_BYTES];
        in.readFully(head);
        ByteBuffer h = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
        int magic = h.getInt();
        if (magic != MAGIC) throw new ProtocolException(String.format("bad magic 0x%08x: not a Tessera attention-offload peer", magic));
        Type type = Type.of(h.get());
        int length = h.getInt();
        if (length < 0 || length > MAX_PAYLOAD_BYTES) throw new ProtocolException(type + " frame of " + length + " bytes, limit " + MAX_PAYLOAD_BYTES);
        byte[] body = new byte[length];
        in.readFully(body);
        int sent = Integer.reverseBytes(in.readInt());
        CRC32 crc = new CRC32();
        crc.update(head, 4, 5);
        crc.update(body);
        if ((int) crc.getValue() != sent) throw new ProtocolException(type + " frame fails its CRC-32: corrupted on the way");
        return new Frame(type, ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN));
    }

    public static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putShort((short) Math.min(bytes.length, 0xFFFF)).put(bytes, 0, Math.min(bytes.length, 0xFFFF));
    }

    public static int stringBytes(String s) {
        return 2 + Math.min(s.getBytes(StandardCharsets.UTF_8).length, 0xFFFF);
    }

    public static String readString(ByteBuffer b) throws ProtocolException {
        need(b, 2, "string length");
        int n = Short.toUnsignedInt(b.getShort());
        need(b, n, "string");
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** An int in [min, max], else a ProtocolException naming the field. */
    public static int readInt(ByteBuffer b, String field, int min, int max) throws ProtocolException {
        need(b, 4, field);
        int v = b.getInt();
        if (v < min || v > max) throw new ProtocolException(field + " " + v + " outside " + min + ".." + max);
        return v;
    }

    public static void need(ByteBuffer b, long bytes, String field) throws ProtocolException {
        if (bytes < 0 || b.remaining() < bytes) throw new ProtocolException("frame ends inside " + field);
    }

    public static void end(ByteBuffer b, Type type) throws ProtocolException {
        if (b.hasRemaining()) throw new ProtocolException(type + " frame has " + b.remaining() + " bytes past its end");
    }

    /** The one-line message of an ERROR frame. */
    public static ByteBuffer error(String message) {
        String m = message == null ? "error" : message.replace('\n', ' ');
        ByteBuffer b = payload(stringBytes(m));
        putString(b, m);
        return b;
    }
}
