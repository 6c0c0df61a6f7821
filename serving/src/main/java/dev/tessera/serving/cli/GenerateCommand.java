package dev.tessera.serving.cli;

import java.util.List;

public final class GenerateCommand implements Command {
    @Override public String name() { return "generate"; }
    @Override public String summary() { return "(being written)"; }
    @Override public String usage() { return "tessera generate"; }
    @Override public int run(List<String> args) { throw new IllegalStateException("not implemented yet"); }
}
