// Reads a chosen CSV file into the textarea, so the form stays a plain urlencoded POST
// (no multipart parser on the server). Without script, pasting works the same.
document.querySelectorAll('input[type=file][data-target]').forEach(function (input) {
  input.addEventListener('change', function () {
    var file = input.files && input.files[0];
    var target = document.getElementById(input.getAttribute('data-target'));
    if (!file || !target) return;
    if (file.size > 2000000) { alert('The file is larger than 2 MB; split it.'); input.value = ''; return; }
    file.text().then(function (text) { target.value = text; });
  });
});
