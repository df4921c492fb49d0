package moetune.app.gui.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ExportViewModelTest {

  @Test
  void shardSizesInDecimalAndBinaryUnits() {
    assertEquals(5_000_000_000L, ExportViewModel.parseSize("5GB"));
    assertEquals(500_000_000L, ExportViewModel.parseSize("500 MB"));
    assertEquals(2L << 30, ExportViewModel.parseSize("2GiB"));
    assertEquals(1234, ExportViewModel.parseSize("1234"));
    assertEquals(1_500_000L, ExportViewModel.parseSize("1.5mb"));
    assertThrows(IllegalArgumentException.class, () -> ExportViewModel.parseSize("five"));
    assertThrows(IllegalArgumentException.class, () -> ExportViewModel.parseSize("0"));
  }
}
