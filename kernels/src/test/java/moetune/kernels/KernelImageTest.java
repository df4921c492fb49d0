package moetune.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The fatbin resource is either a real fatbin or absent with a clear message. */
class KernelImageTest {

  @Test
  void fatbinIsAFatbinOrReportsThatNvccWasMissing() {
    if (KernelImage.isBuilt()) {
      byte[] f = KernelImage.fatbin();
      // the fatbin container header starts with magic 0xBA55ED50 (little-endian) and holds
      // machine code for sm_80, sm_90a and compute_90 PTX, so it is far from empty
      assertEquals(
          0xBA55ED50, ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getInt(0), "fatbin magic");
      assertTrue(f.length > 100_000, "fatbin of " + f.length + " bytes");
    } else {
      IllegalStateException e = assertThrows(IllegalStateException.class, KernelImage::fatbin);
      assertTrue(e.getMessage().contains("not built (no nvcc at build time)"), e.getMessage());
    }
  }
}
