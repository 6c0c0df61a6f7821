package dev.tessera.serving.cli;

import java.util.List;

public final class BenchCommand implements Command {
    @Override public String name() { return "bench"; }
    @Override public String summary() { return "(being written)"; }
    @Override public String usage() { return "tessera bench"; }
    @Override public int run(List<String> args) { throw new IllegalStateException("not implemented yet"); }
}
