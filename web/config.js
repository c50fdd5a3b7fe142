// Where the page finds the inference API. Empty means the page's own origin (the nginx front
// in the compose deployment); `make serve` answers this file with its local TorchServe address.
window.DIGIT_LENS_API = "";
