package dev.tessera.serving.cli;

import java.util.List;

public final class TokenizeCommand implements Command {
    @Override public String name() { return "tokenize"; }
    @Override public String summary() { return "(being written)"; }
    @Override public String usage() { return "tessera tokenize"; }
    @Override public int run(List<String> args) { throw new IllegalStateException("not implemented yet"); }
}
