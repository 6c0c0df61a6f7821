package dev.tessera.models.arch;

import java.util.List;

/**
 * The Llama-family architectures Tessera runs, as table rows: what differs between them is data, not code.
 * A new architecture is one row here (and, if it needs a new op, one file).
 */
public record Architecture(String name, boolean neoxRope, boolean attentionBias) {
    public static final List<Architecture> SUPPORTED = List.of(
            new Architecture("llama", false, false),
            new Architecture("qwen2", true, true));

    public static Architecture find(String name) {
        for (Architecture a : SUPPORTED) if (a.name.equals(name)) return a;
        return null;
    }

    public static String supportedNames() {
        return String.join(", ", SUPPORTED.stream().map(Architecture::name).toList());
    }
}
