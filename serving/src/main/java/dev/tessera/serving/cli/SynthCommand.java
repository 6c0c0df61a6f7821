package dev.tessera.serving.cli;

import java.util.List;

public final class SynthCommand implements Command {
    @Override public String name() { return "synth"; }
    @Override public String summary() { return "(being written)"; }
    @Override public String usage() { return "tessera synth"; }
    @Override public int run(List<String> args) { throw new IllegalStateException("not implemented yet"); }
}
