"""What a GPU holds: WebGL without float32 render targets, and textures smaller than a photo.

Both simulated in the software WebGL here the way a real device shows them: a phone's WebGL
that lacks EXT_color_buffer_float, and a MAX_TEXTURE_SIZE of 2048 (the least WebGL 2
allows; 8192 here).
"""

import limits
import pytest
from conftest import READY, watched_page
from PIL import Image

NO_FLOAT32_RENDERING = """(() => {
  const original = WebGL2RenderingContext.prototype.getExtension;
  WebGL2RenderingContext.prototype.getExtension = function (name) {
    return name === 'EXT_color_buffer_float' ? null : original.call(this, name);
  };
})();"""
SMALL_TEXTURES = """(() => {
  const original = WebGL2RenderingContext.prototype.getParameter;
  WebGL2RenderingContext.prototype.getParameter = function (name) {
    return name === this.MAX_TEXTURE_SIZE ? 2048 : original.call(this, name);
  };
})();"""


def test_webgl_that_renders_only_half_floats_is_refused_with_its_reason(gpu_module_context, site_url):
    with watched_page(gpu_module_context) as page:
        page.add_init_script(NO_FLOAT32_RENDERING)
        page.goto(site_url + "index.html?backend=webgl&prepare=off")
        page.wait_for_function(READY, timeout=120_000)
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "wasm"
        note = page.locator("#backend").text_content()
        assert ("webgl was asked for, but this GPU renders only half-float textures in WebGL, "
                "too coarse for gradients") in note


def test_photos_and_tiles_are_sized_to_the_largest_texture(gpu_module_context, site_url, tmp_path):
    with watched_page(gpu_module_context) as page:
        page.add_init_script(SMALL_TEXTURES)
        page.goto(site_url + "index.html?backend=webgl&prepare=off")
        page.wait_for_function(READY, timeout=120_000)
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "webgl"
        assert page.evaluate("window.dreamframe.backend.maxElements") == 2048 ** 2
        photo = tmp_path / "big.png"
        Image.new("RGB", (2048, 1536), "gray").save(photo)
        page.set_input_files("#file", str(photo))
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Photo')", timeout=60_000)
        width, height = page.evaluate("() => [document.getElementById('before').width, "
                                      "document.getElementById('before').height]")
        assert width * height * 3 <= 2048 ** 2  # the photo as one unpacked texture fits
        assert width * height >= limits.largest_photo(2048 ** 2) * 0.99  # and no smaller
        assert page.locator("#note").inner_text() == (
            f"Scaled from 2048×1536 to {width}×{height} (the most this GPU's WebGL holds).")


@pytest.mark.parametrize("texture, tile", [(8192, 512), (4096, 512), (2048, 256), (1024, 64)])
def test_the_tile_shrinks_to_what_a_texture_holds(texture, tile):
    """MobileNetV2's largest activation holds 24 values per input pixel (block_1's 96
    channels at stride 2). With a 2048 texture limit a 512 px tile (with its 64 px margins)
    failed here ("Requested texture size [2518x2519] greater than WebGL maximum") and 256
    px worked; with 1024, 256 px failed."""
    got = limits.largest_tile(texture ** 2, 24.0, 64, 512)
    assert got == tile
    whole = got + 2 * 64
    assert whole * whole * 24 <= texture ** 2
    assert limits.largest_tile(None, 24.0, 64, 512) == 512  # wasm and cpu: no limit
