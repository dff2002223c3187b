// The API token the web chat and the dashboard ask for when the API needs one, kept in this
// browser under one key, so entering it on either page serves both.
const tokenKey = 'agent.token';
const panel = document.getElementById('token-panel');
const input = document.getElementById('token');

/** The Authorization header for the saved token, if any. */
export function authHeader() {
  const token = localStorage.getItem(tokenKey);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Shows the token panel (the API answered 401). */
export function askForToken() {
  panel.hidden = false;
}

/** Calls `onSaved` each time a token is saved (the button, or Enter in the field). */
export function onTokenSaved(onSaved) {
  const save = document.getElementById('save-token');
  save.addEventListener('click', () => {
    const token = input.value.trim();
    if (token) localStorage.setItem(tokenKey, token);
    else localStorage.removeItem(tokenKey);
    panel.hidden = true;
    onSaved();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') save.click();
  });
}
