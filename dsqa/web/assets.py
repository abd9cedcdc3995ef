"""How the page looks and what it runs in the browser: the theme (system
fonts only), the stylesheet, and the page's own scripts. Nothing here is
fetched from the network, and the notes' HTML never carries a script.
"""

from __future__ import annotations

from .gradio_import import gr

#: System fonts only: nothing is fetched from a font CDN.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace"],
)

CSS = """
.dsqa-answer { font-size: 1.05rem; line-height: 1.5; padding: 0.75rem 1rem; border-radius: 8px;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.dsqa-answer.dsqa-not-found { border-left: 4px solid #d97706; }
.dsqa-answer.dsqa-weak { border-left: 4px solid #ca8a04; }
.dsqa-scale { margin-top: .4em; font-size: .85em; opacity: .75; }
.dsqa-answer.dsqa-found { border-left: 4px solid #2563eb; }
.dsqa-answer .dsqa-cite { font-weight: 600; text-decoration: none; }
.dsqa-answer code, .dsqa-text code { font-family: var(--font-mono); font-size: 0.88em; padding: 0 0.2em;
  border-radius: 4px; background: var(--background-fill-secondary); }
.dsqa-answer-text { margin-top: 0.35rem; }
.dsqa-error { padding: 0.75rem 1rem; border-radius: 8px; border: 1px solid #dc2626;
  border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); }
.dsqa-passage { margin: 0.75rem 0; padding: 0.75rem 1rem; border-radius: 8px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
@keyframes dsqa-flash { from { box-shadow: 0 0 0 3px #93c5fd; } to { box-shadow: 0 0 0 3px transparent; } }
.dsqa-passage.dsqa-flash { animation: dsqa-flash 1.5s ease-out; }
.dsqa-passage-head { display: flex; gap: 0.75rem; align-items: baseline; justify-content: space-between; }
.dsqa-citation { font-weight: 600; margin: 0; font-size: 0.95rem; word-break: break-word; }
.dsqa-heading { font-weight: 400; cursor: help; }
.dsqa-n { color: var(--body-text-color-subdued); margin-right: 0.35rem; }
.dsqa-score { white-space: nowrap; font-size: 0.8rem; padding: 0.05rem 0.5rem; border-radius: 999px;
  border: 1px solid var(--border-color-primary); color: var(--body-text-color-subdued); }
.dsqa-score.dsqa-strong { color: #15803d; border-color: #86efac; }
.dsqa-score.dsqa-good { color: #1d4ed8; border-color: #93c5fd; }
.dsqa-score.dsqa-weak { color: #b45309; border-color: #fcd34d; }
.dsqa-actions { display: flex; flex-wrap: wrap; gap: 0.25rem 0.9rem; align-items: center; margin-top: 0.3rem;
  font-size: 0.8rem; }
.dsqa-actions a { color: var(--link-text-color); text-decoration: none; }
.dsqa-actions a:hover { text-decoration: underline; }
.dsqa-copy { font-size: 0.8rem; padding: 0.05rem 0.5rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); color: inherit; }
.dsqa-text { font-size: 0.95rem; line-height: 1.5; margin: 0.4rem 0; overflow-wrap: anywhere; }
.dsqa-text p, .dsqa-text ul, .dsqa-text ol, .dsqa-text pre, .dsqa-text table, .dsqa-text blockquote { margin: 0.35rem 0; }
.dsqa-text ul, .dsqa-text ol { padding-left: 1.4rem; }
.dsqa-text ul { list-style: disc; }
.dsqa-text ol { list-style: decimal; }
.dsqa-text h1, .dsqa-text h2, .dsqa-text h3, .dsqa-text h4, .dsqa-text h5, .dsqa-text h6 {
  font-size: 1rem; font-weight: 600; margin: 0.5rem 0 0.25rem; }
.dsqa-text pre { overflow-x: auto; padding: 0.5rem 0.75rem; border-radius: 6px; font-size: 0.85rem;
  background: var(--background-fill-secondary); }
.dsqa-text pre code { background: none; padding: 0; white-space: pre; }
.dsqa-text a { color: var(--link-text-color); }
.dsqa-text .dsqa-img { font-size: 0.8rem; }
.dsqa-text table { border-collapse: collapse; font-size: 0.88rem; display: block; overflow-x: auto; }
.dsqa-text th, .dsqa-text td { border: 1px solid var(--border-color-primary); padding: 0.2rem 0.5rem; }
.dsqa-text blockquote { border-left: 3px solid var(--border-color-primary); padding-left: 0.75rem; }
.dsqa-text mark, .dsqa-answer mark, .dsqa-line.dsqa-here mark { background: #fde047; color: #111; padding: 0 1px; border-radius: 2px; }
.dsqa-context summary { cursor: pointer; font-size: 0.85rem; color: var(--link-text-color); }
.dsqa-context-body { max-height: 28rem; overflow: auto; font-family: var(--font-mono); font-size: 0.8rem;
  border-top: 1px solid var(--border-color-primary); margin-top: 0.4rem; padding-top: 0.4rem; }
.dsqa-line { white-space: pre-wrap; }
.dsqa-line.dsqa-here { background: rgba(37, 99, 235, 0.10); }
.dsqa-ln { display: inline-block; min-width: 3.5em; color: var(--body-text-color-subdued); user-select: none; }
.dsqa-status { font-size: 0.9rem; line-height: 1.5; }
.dsqa-status .dsqa-ok { color: #15803d; font-weight: 600; }
.dsqa-status .dsqa-stale { color: #b45309; font-weight: 600; }
.dsqa-report { font-size: 0.85rem; }
.dsqa-report ul { margin: 0.2rem 0 0 1.1rem; list-style: disc; }
#dsqa-examples { flex-wrap: wrap !important; gap: 0.4rem; padding-bottom: 2px; }
#dsqa-examples > * { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
#dsqa-examples button { white-space: nowrap; }
/* The Ask button as tall as the input beside it, not as the whole box with its label. */
#dsqa-ask-row { align-items: flex-end !important; }
#dsqa-ask { align-self: flex-end !important; height: auto !important; min-height: 0 !important;
  margin-bottom: var(--block-padding, 10px) !important; }
/* A row that scrolls sideways fades out at its right edge while there is more. */
#dsqa-examples.dsqa-more { -webkit-mask-image: linear-gradient(to right, #000 calc(100% - 48px), transparent);
  mask-image: linear-gradient(to right, #000 calc(100% - 48px), transparent); }
@media (max-width: 640px) {
  #dsqa-examples { flex-wrap: nowrap !important; overflow-x: auto; scrollbar-width: thin; }
  #dsqa-main { gap: 0.5rem; }
  #dsqa-main > #dsqa-ask-row { order: 0; }
  #dsqa-main > #dsqa-answer { order: 1; }
  #dsqa-main > #dsqa-examples { order: 2; }
  #dsqa-main > #dsqa-filters { order: 3; }
  #dsqa-main > #dsqa-passages { order: 4; }
  .gradio-container { padding-left: 8px !important; padding-right: 8px !important; }
  #dsqa-answer, #dsqa-passages { padding: 0 !important; }
  .dsqa-actions { gap: 0.25rem 0.6rem; }
  #dsqa-ask-row { flex-wrap: nowrap !important; }
  #dsqa-ask-row > * { min-width: 0 !important; }
  #dsqa-intro p { display: none; }
  .dsqa-passage { padding: 0.6rem 0.7rem; }
  .dsqa-passage-head { flex-direction: column; gap: 0.2rem; }
}
"""



#: The page's own script (in ``<head>``; the notes' HTML never carries any):
#: the copy-citation buttons, and ``/`` to focus the question box.
HEAD = """<script>
(() => {
  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (err) {
      const area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      let ok = false; try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove(); return ok;
    }
  }
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button.dsqa-copy");
    if (!button) return;
    const ok = await copyText(button.dataset.citation || "");
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy citation"; }, 1500);
  });
  // A link to a place in the page (an answer's [n] marker) scrolls there.
  // Followed as a link it would load a new page: the page sets
  // <base href="./">, so "#dsqa-p2" means "./#dsqa-p2", without the ?q=.
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("#dsqa-answer a[href^='#'], #dsqa-passages a[href^='#']");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const target = document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
    if (!target) return;
    target.scrollIntoView({ block: "start" });
    target.classList.remove("dsqa-flash"); void target.offsetWidth; target.classList.add("dsqa-flash");
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const box = document.querySelector("#dsqa-question textarea, #dsqa-question input");
    if (box) { event.preventDefault(); box.focus(); box.select(); }
  });
})();
</script>"""

#: On load: the example row, where it scrolls sideways (on a phone), fades at
#: its right edge while there is more to scroll to. (The filter row starts
#: collapsed everywhere, so the passages come right after the answer.)
ON_LOAD = """() => {
  let tries = 0;
  const watch = () => {
    const row = document.querySelector("#dsqa-examples");
    if (!row) { if (tries++ < 50) setTimeout(watch, 100); return; }
    const cue = () => row.classList.toggle("dsqa-more", row.scrollLeft + row.clientWidth < row.scrollWidth - 2);
    row.addEventListener("scroll", cue, { passive: true });
    window.addEventListener("resize", cue);
    cue();
  };
  watch();
}"""

#: Runs before each question is sent: the page's address becomes ``?q=…``,
#: so it can be bookmarked or shared (and asks again on load).
REMEMBER_QUESTION = """(question, k, notes) => {
  try {
    const url = new URL(window.location.href);
    if ((question || "").trim()) { url.searchParams.set("q", question.trim()); } else { url.searchParams.delete("q"); }
    window.history.replaceState(null, "", url);
  } catch (err) {}
  return [question, k, notes];
}"""

