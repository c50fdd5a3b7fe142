"""The page in a real headless Chromium against a real TorchServe."""
import io

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from selenium.webdriver.support.ui import Select

from ops.serve import REPO_ROOT, free_port, serve_page
from tests.conftest import PAGE_PORT, require_binary
from tests.images import STAR, THREE, as_photo_jpeg, mnist_digit
from training.presentations import FORTY_TWO

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,1400"]


@pytest.fixture(scope="module")
def page_url(torchserve, model_store):
    server = serve_page(PAGE_PORT, torchserve.inference_url, model_store / "models.json")
    yield f"http://127.0.0.1:{PAGE_PORT}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(require_binary("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def by_test_id(driver, test_id):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{test_id}"]')


def wait_for(driver, condition, timeout=30):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def image_loaded(driver, test_id) -> bool:
    element = by_test_id(driver, test_id)
    return element.is_displayed() and driver.execute_script("return arguments[0].naturalWidth", element) > 0


def open_page(driver, url):
    """Load the page and wait until it has the list of served models."""
    driver.get(url)
    wait_for(driver, lambda d: len(Select(by_test_id(d, "model-select")).options) > 0)


def draw(driver, strokes):
    canvas = by_test_id(driver, "canvas")
    width, height = canvas.size["width"], canvas.size["height"]
    offset = lambda x, y: (round((x - 0.5) * width), round((y - 0.5) * height))   # from the element's centre
    for stroke in strokes:
        actions = ActionChains(driver, duration=10)
        actions.move_to_element_with_offset(canvas, *offset(*stroke[0])).click_and_hold()
        for x, y in stroke[1:]:
            actions.move_to_element_with_offset(canvas, *offset(x, y))
        actions.release().perform()


def test_drawing_a_three_shows_three_with_its_charts(browser, page_url):
    open_page(browser, page_url)
    draw(browser, THREE)
    wait_for(browser, lambda d: by_test_id(d, "digit").text == "3")
    assert by_test_id(browser, "confidence").text.endswith("%")
    wait_for(browser, lambda d: all(image_loaded(d, t) for t in ("prob-chart", "activations", "model-input")))
    assert not by_test_id(browser, "error").is_displayed()


def test_a_drawn_star_is_said_not_to_be_a_digit(browser, page_url):
    open_page(browser, page_url)
    draw(browser, STAR)
    wait_for(browser, lambda d: by_test_id(d, "outlier").is_displayed())
    assert by_test_id(browser, "outlier").text == "This does not look like a handwritten digit."
    assert "faint" in by_test_id(browser, "digit").get_attribute("class")
    browser.find_element(By.ID, "clear").click()
    draw(browser, THREE)
    wait_for(browser, lambda d: by_test_id(d, "digit").text == "3" and not by_test_id(d, "outlier").is_displayed())


def test_layer_selector_switches_the_activation_maps(browser, page_url):
    select = by_test_id(browser, "layer-select")
    options = [o.get_attribute("value") for o in select.find_elements(By.TAG_NAME, "option")]
    assert options == ["conv1", "conv3", "conv5"]
    first = by_test_id(browser, "activations").get_attribute("src")
    select.find_elements(By.TAG_NAME, "option")[2].click()
    wait_for(browser, lambda d: by_test_id(d, "activations").get_attribute("src") != first)


def test_a_drawn_42_is_read_as_a_number_with_a_box_and_an_explanation_per_digit(browser, page_url):
    open_page(browser, page_url)
    draw(browser, FORTY_TWO)
    wait_for(browser, lambda d: by_test_id(d, "number").text == "42")
    assert by_test_id(browser, "number-view").is_displayed() and by_test_id(browser, "number-boxes").is_displayed()
    chips = by_test_id(browser, "number-digits").find_elements(By.TAG_NAME, "button")
    assert [chip.text for chip in chips] == ["4", "2"]
    wait_for(browser, lambda d: by_test_id(d, "explain-caption").text.startswith("Why 4"))
    chips[1].click()
    wait_for(browser, lambda d: by_test_id(d, "digit").text == "2" and by_test_id(d, "explain-caption").text.startswith("Why 2"))
    assert chips[1].get_attribute("aria-pressed") == "true" and image_loaded(browser, "attributions")
    boxed = browser.execute_script("""const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0; for (let i = 0; i < d.length; i += 4) blue += d[i] < 80 && d[i + 2] > 200; return blue;""",
                                   by_test_id(browser, "number-boxes"))
    assert boxed > 100          # the boxes are drawn
    browser.find_element(By.ID, "clear").click()
    assert not by_test_id(browser, "number-view").is_displayed()


def test_uploading_a_photo_shows_the_digit_and_both_charts(browser, page_url, tmp_path):
    ink, label = mnist_digit(42)
    photo = tmp_path / "digit-photo.jpg"
    photo.write_bytes(as_photo_jpeg(ink, exif_rotate=True))
    open_page(browser, page_url)
    by_test_id(browser, "file-input").send_keys(str(photo))
    wait_for(browser, lambda d: by_test_id(d, "digit").text == str(label))
    wait_for(browser, lambda d: all(image_loaded(d, t) for t in ("prob-chart", "activations", "model-input")))


def test_why_this_answer_explains_the_prediction_and_any_chosen_digit(browser, page_url, tmp_path):
    open_page(browser, page_url)
    draw(browser, THREE)
    wait_for(browser, lambda d: image_loaded(d, "attributions") and by_test_id(d, "explain-caption").text.startswith("Why 3"))
    first = by_test_id(browser, "attributions").get_attribute("src")
    assert browser.execute_script("return arguments[0].naturalWidth", by_test_id(browser, "attributions")) == 28
    by_test_id(browser, "explain-targets").find_element(By.CSS_SELECTOR, '[data-target="8"]').click()
    wait_for(browser, lambda d: by_test_id(d, "explain-caption").text.startswith("Why 8"))
    assert by_test_id(browser, "attributions").get_attribute("src") != first
    pressed = [b.text for b in by_test_id(browser, "explain-targets").find_elements(By.CSS_SELECTOR, '[aria-pressed="true"]')]
    assert pressed == ["8"]
    # an upload is explained too
    ink, label = mnist_digit(43)
    photo = tmp_path / "digit.jpg"
    photo.write_bytes(as_photo_jpeg(ink))
    by_test_id(browser, "file-input").send_keys(str(photo))
    wait_for(browser, lambda d: by_test_id(d, "explain-caption").text.startswith(f"Why {label}") and image_loaded(d, "attributions"))


def test_uploading_a_non_image_shows_the_error(browser, page_url, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture at all")
    open_page(browser, page_url)
    by_test_id(browser, "file-input").send_keys(str(text_file))
    wait_for(browser, lambda d: by_test_id(d, "error").is_displayed())
    assert "not an image" in by_test_id(browser, "error").text
    assert by_test_id(browser, "digit").text == "–"


def test_an_unreachable_server_is_reported(browser, page_url):
    open_page(browser, f"{page_url}?api=http://127.0.0.1:{free_port()}")
    draw(browser, THREE)
    wait_for(browser, lambda d: by_test_id(d, "error").is_displayed())
    assert "Cannot reach" in by_test_id(browser, "error").text


def test_screenshot_of_a_prediction_is_not_blank(browser, page_url, tmp_path):
    open_page(browser, page_url)
    draw(browser, THREE)
    wait_for(browser, lambda d: by_test_id(d, "digit").text == "3" and image_loaded(d, "activations"))
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    pixels = np.asarray(shot)
    assert shot.width >= 1000
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500      # charts and maps, not a flat page
    shot.save(tmp_path / "page.png")


def test_choosing_the_fashion_model_reads_a_product_photo_and_switching_back_rereads_it(browser, page_url):
    open_page(browser, page_url)
    models = Select(by_test_id(browser, "model-select"))
    assert [o.get_attribute("value") for o in models.options] == ["mnist", "fashion"]
    assert models.first_selected_option.get_attribute("value") == "mnist"
    models.select_by_value("fashion")
    assert "garment" in by_test_id(browser, "prompt").text and "model=fashion" in browser.current_url
    by_test_id(browser, "file-input").send_keys(str(REPO_ROOT / "samples" / "trouser-photo.jpg"))
    wait_for(browser, lambda d: by_test_id(d, "digit").text == "Trouser")
    wait_for(browser, lambda d: all(image_loaded(d, t) for t in ("prob-chart", "activations", "model-input")))
    assert "Fashion-MNIST" in by_test_id(browser, "input-caption").text
    layers = [o.get_attribute("value") for o in Select(by_test_id(browser, "layer-select")).options]
    assert layers == ["conv2", "conv4", "conv6"]
    targets = [b.text for b in by_test_id(browser, "explain-targets").find_elements(By.TAG_NAME, "button")]
    assert targets[0] == "T-shirt/top" and targets[9] == "Ankle boot"
    wait_for(browser, lambda d: by_test_id(d, "explain-caption").text.startswith("Why Trouser") and image_loaded(d, "attributions"))
    models.select_by_value("mnist")                      # the same upload, read by the digit model
    wait_for(browser, lambda d: by_test_id(d, "digit").text.isdigit() and "mnist" in d.find_element(By.ID, "model-name").text)
    assert "MNIST" in by_test_id(browser, "input-caption").text


def test_a_model_named_in_the_address_is_chosen(browser, page_url):
    open_page(browser, f"{page_url}?model=fashion")
    assert Select(by_test_id(browser, "model-select")).first_selected_option.get_attribute("value") == "fashion"
    assert by_test_id(browser, "input-heading").text.startswith("Clothing")
