package dev.tessera.serving.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import java.util.Map;

/**
 * {@code tojson} as Hugging Face defines it for chat templates:
 * {@code json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)}.
 * Jinjava's own {@code tojson} writes compact Jackson output ({@code {"a":1}}); Python writes
 * {@code {"a": 1}}, and the model was trained on Python's form.
 */
final class PythonJsonFilter implements Filter {

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object indentArg = kwargs.containsKey("indent") ? kwargs.get("indent") : (args.length > 0 ? args[0] : null);
        Integer indent = indentArg == null ? null : (indentArg instanceof Number n ? n.intValue() : Integer.parseInt(indentArg.toString()));
        boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
        return PythonJson.dumps(var, indent, sortKeys);
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        Integer indent = args.length > 0 && args[0] != null ? Integer.valueOf(args[0]) : null;
        return PythonJson.dumps(var, indent, false);
    }
}
