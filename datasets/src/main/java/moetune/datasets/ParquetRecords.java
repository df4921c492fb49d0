package moetune.datasets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hardwood.InputFile;
import dev.hardwood.reader.ParquetFileReader;
import dev.hardwood.reader.RowReader;
import dev.hardwood.row.FieldAccessor;
import dev.hardwood.row.PqList;
import dev.hardwood.row.PqMap;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reads the rows of a Parquet file (what HF datasets publish: {@code messages} or {@code
 * conversations} as list&lt;struct&gt;, Alpaca's flat strings) as the same JSON records a JSONL
 * file gives, so {@link RecordParser} checks them with the same field rules and messages. Row n is
 * reported as line n (1-based) in errors.
 *
 * <p>Parquet is read by Hardwood ({@code dev.hardwood:hardwood-core}): a Parquet reader with no
 * Hadoop or parquet-java underneath (parquet-java's reader needs hadoop-common and its dozens of
 * jars); snappy-java and zstd-jni supply the codecs HF's files use (pyarrow writes snappy by
 * default). Every row is converted as a whole; a value the reader cannot turn into text (a binary
 * column that is not UTF-8) becomes that record's error.
 */
final class ParquetRecords {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  /**
   * Hardwood logs through System.Logger (java.util.logging here) at INFO on first use ("SIMD
   * support: disabled"); a user reading a dataset wants only its warnings. Held so the level stays.
   */
  private static final java.util.logging.Logger HARDWOOD_LOG = quiet();

  private static java.util.logging.Logger quiet() {
    java.util.logging.Logger l = java.util.logging.Logger.getLogger("dev.hardwood");
    l.setLevel(java.util.logging.Level.WARNING);
    return l;
  }

  private ParquetRecords() {}

  static boolean isParquet(Path file) {
    return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".parquet");
  }

  static List<JsonLines.Entry> read(Path file) {
    if (!Files.exists(file)) {
      throw new DatasetException(file + ": no such file; check the path");
    }
    List<JsonLines.Entry> out = new ArrayList<>();
    try (ParquetFileReader reader = ParquetFileReader.open(InputFile.of(file));
        RowReader rows = reader.rowReader()) {
      int row = 0;
      while (rows.hasNext()) {
        rows.next();
        row++;
        try {
          out.add(new JsonLines.Entry(struct(rows), row, null));
        } catch (NotText e) {
          out.add(new JsonLines.Entry(null, row, e.getMessage()));
        }
      }
    } catch (NoSuchFileException e) {
      throw new DatasetException(file + ": no such file; check the path");
    } catch (IOException | RuntimeException e) {
      if (e instanceof DatasetException d) {
        throw d;
      }
      String why = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
      throw new DatasetException(
          file + ": cannot read it as Parquet (" + e.getClass().getSimpleName() + ": " + why + ")");
    }
    if (out.isEmpty()) {
      throw new DatasetException(file + ": the Parquet file has no rows");
    }
    return out;
  }

  private static ObjectNode struct(FieldAccessor s) {
    ObjectNode o = F.objectNode();
    for (int i = 0; i < s.getFieldCount(); i++) {
      String name = s.getFieldName(i);
      o.set(name, s.isNull(name) ? F.nullNode() : value(s.getValue(name), name));
    }
    return o;
  }

  private static JsonNode value(Object v, String field) {
    return switch (v) {
      case null -> F.nullNode();
      case String s -> F.textNode(s);
      case Boolean b -> F.booleanNode(b);
      case Integer i -> F.numberNode(i);
      case Long l -> F.numberNode(l);
      case Float f -> F.numberNode(f);
      case Double d -> F.numberNode(d);
      case byte[] b -> F.textNode(utf8(b, field));
      case PqList list -> {
        ArrayNode a = F.arrayNode();
        for (int i = 0; i < list.size(); i++) {
          a.add(list.isNull(i) ? F.nullNode() : value(list.get(i), field));
        }
        yield a;
      }
      case FieldAccessor s -> struct(s);
      case PqMap m -> {
        ObjectNode o = F.objectNode();
        for (PqMap.Entry e : m.getEntries()) {
          o.set(String.valueOf(e.getKey()), value(e.getValue(), field));
        }
        yield o;
      }
      default -> F.textNode(v.toString()); // dates, decimals: not read by any record format
    };
  }

  private static String utf8(byte[] b, String field) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(b))
          .toString();
    } catch (CharacterCodingException e) {
      throw new NotText("field '" + field + "' is binary, not UTF-8 text");
    }
  }

  /** A value that is not text where a record needs text: the row's error. */
  private static final class NotText extends RuntimeException {
    NotText(String m) {
      super(m);
    }
  }
}
