// A lightweight highlighter for script bodies: comments, strings, keywords,
// variables and ${placeholders}. Parameters the script declares are marked
// apart from other ${VARS}, which the shell keeps for itself.
import { escapeHtml } from "./common.js";

const SHELL_WORDS = new Set(("if then else elif fi for in do done while until case esac function " +
  "return local export readonly set unset shift exit break continue select time declare typeset source trap eval exec").split(" "));
const PYTHON_WORDS = new Set(("False None True and as assert async await break class continue def del elif else " +
  "except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield print").split(" "));
const PS_WORDS = new Set("if else elseif foreach for while do until switch function param return try catch finally throw begin process end".split(" "));

const TOKEN = /(#[^\n]*)|('[^'\n]*'?)|("(?:[^"\\\n]|\\.)*"?)|(\$\{[A-Za-z_][A-Za-z0-9_]*\})|(\$\{[^}\n]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9#?@*$!-])|([A-Za-z_][A-Za-z0-9_-]*)|(\b\d+\b)/g;
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function words(shell) {
  if (shell === "python") return PYTHON_WORDS;
  if (shell === "powershell") return PS_WORDS;
  return SHELL_WORDS;
}

function placeholder(token, params) {
  const name = token.slice(2, -1);
  const known = params === null || params.has(name);
  const title = known ? `parameter ${name}` : `shell variable ${name} (not a parameter)`;
  return `<span class="${known ? "tok-p" : "tok-v"}" title="${escapeHtml(title)}">${escapeHtml(token)}</span>`;
}

function inString(token, params) {
  let out = "";
  let last = 0;
  for (const m of token.matchAll(PLACEHOLDER)) {
    out += escapeHtml(token.slice(last, m.index)) + placeholder(m[0], params);
    last = m.index + m[0].length;
  }
  return out + escapeHtml(token.slice(last));
}

/**
 * HTML for `text` with tokens wrapped in spans.
 * @param {string} text
 * @param {string} shell bash, sh, zsh, ksh, python, powershell or cmd
 * @param {Set<string>|null} params declared parameter names (null: every ${name} counts)
 */
export function highlight(text, shell, params = null) {
  const keywords = words(shell);
  let out = "";
  let last = 0;
  TOKEN.lastIndex = 0;
  let m;
  while ((m = TOKEN.exec(text)) !== null) {
    const [token, comment, single, double, ph, variable, word, number] = m;
    if (comment !== undefined) {
      const before = m.index === 0 ? "\n" : text[m.index - 1];
      const isComment = /\s|;/.test(before);
      if (!isComment) {
        out += escapeHtml(text.slice(last, m.index + 1));
        last = m.index + 1;
        TOKEN.lastIndex = m.index + 1;
        continue;
      }
    }
    out += escapeHtml(text.slice(last, m.index));
    if (comment !== undefined) out += `<span class="tok-c">${escapeHtml(token)}</span>`;
    else if (single !== undefined) out += `<span class="tok-s">${escapeHtml(token)}</span>`;
    else if (double !== undefined) out += `<span class="tok-s">${inString(token, params)}</span>`;
    else if (ph !== undefined) out += placeholder(token, params);
    else if (variable !== undefined) out += `<span class="tok-v">${escapeHtml(token)}</span>`;
    else if (word !== undefined) out += keywords.has(word) ? `<span class="tok-k">${escapeHtml(token)}</span>` : escapeHtml(token);
    else if (number !== undefined) out += `<span class="tok-n">${token}</span>`;
    else out += escapeHtml(token);
    last = m.index + token.length;
  }
  return out + escapeHtml(text.slice(last));
}
