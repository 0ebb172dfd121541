/*
 * Start JupyterLab (the project's venv, ../.venv) on a free port with a temporary root
 * folder holding timeline.ipynb and a copy of every example notebook (../notebooks), wait
 * until it answers, and pass its URL to the tests (ASL_LAB_URL; workers inherit the
 * runner's environment). The returned function stops it and removes the folder.
 * JupyterLab's own output goes to test-results/jupyterlab.log, for when a test fails.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const HERE = __dirname;
const JUPYTER = path.resolve(HERE, '..', '.venv', 'bin', 'jupyter');
const NOTEBOOKS = path.resolve(HERE, '..', 'notebooks');
const START_TIMEOUT_MS = 120_000;

// The cell the test runs: 20 events, 3 entities, 2 types, one hour apart (so the
// timeline's marks do not overlap). Payload keys accumulate per entity, so an entity's
// state after an event holds more than that event's payload.
const CELL = `import allsource_lab as asl

store = asl.open()
for i in range(20):
    kind = "order.placed" if i % 2 == 0 else "order.paid"
    payload = {"sku": f"sku-{i:02d}", "step": i}
    payload.update({"qty": i + 1} if kind == "order.placed" else {"paid": True})
    store.append(kind, f"order-{i % 3}", payload, timestamp=f"2026-01-01T{i:02d}:00:00Z")
store.events()`;

function notebook(source: string): object {
  return {
    cells: [
      {
        cell_type: 'code',
        execution_count: null,
        id: 'timeline-cell',
        metadata: {},
        outputs: [],
        source: source.split('\n').map((line, i, all) => (i < all.length - 1 ? line + '\n' : line))
      }
    ],
    metadata: {
      kernelspec: { display_name: 'Python 3 (ipykernel)', language: 'python', name: 'python3' },
      language_info: { name: 'python' }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
}

function withoutDefaultStore(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.ALLSOURCE_DEFAULT_STORE;
  return copy;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

async function waitUntilUp(url: string, lab: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (lab.exitCode !== null) {
      throw new Error(`JupyterLab exited with ${lab.exitCode}; see ${log}`);
    }
    try {
      const response = await fetch(`${url}/api/status`);
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 500));
  }
  throw new Error(`JupyterLab did not answer at ${url} within ${START_TIMEOUT_MS} ms; see ${log}`);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  if (!fs.existsSync(JUPYTER)) {
    throw new Error(`${JUPYTER} not found: run \`make venv\` (or \`make test-ui\`) first`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'asl-ui-'));
  const work = path.join(root, 'notebooks');
  fs.mkdirSync(work);
  // The news prompt ("Would you like to get notified ...") is a toast over the page's
  // corner; it has nothing to fetch here and nothing to do with the test.
  const labconfig = path.join(root, 'config', 'labconfig');
  fs.mkdirSync(labconfig, { recursive: true });
  fs.writeFileSync(
    path.join(labconfig, 'page_config.json'),
    JSON.stringify({ disabledExtensions: { '@jupyterlab/apputils-extension:announcements': true } })
  );
  fs.writeFileSync(path.join(work, 'timeline.ipynb'), JSON.stringify(notebook(CELL), null, 1));
  // Copies, not the originals: running them in the browser must not rewrite the
  // committed outputs, and the stores they create land in the temporary folder.
  for (const name of fs.readdirSync(NOTEBOOKS).filter(n => n.endsWith('.ipynb'))) {
    fs.copyFileSync(path.join(NOTEBOOKS, name), path.join(work, name));
  }
  // Every cell attached to the page: the default windowing ("contentVisibility") skips
  // drawing cells out of view, and a full-page screenshot or a check of a far output
  // must see them all.
  const notebookSettings = path.join(root, 'settings', '@jupyterlab', 'notebook-extension');
  fs.mkdirSync(notebookSettings, { recursive: true });
  fs.writeFileSync(
    path.join(notebookSettings, 'tracker.jupyterlab-settings'),
    JSON.stringify({ windowingMode: 'none' })
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const results = path.join(HERE, 'test-results');
  fs.mkdirSync(results, { recursive: true });
  const log = path.join(results, 'jupyterlab.log');
  const out = fs.openSync(log, 'w');
  const lab = spawn(
    JUPYTER,
    [
      'lab',
      '--allow-root',
      '--no-browser',
      // No token, no password (IdentityProvider.token is ServerApp.token's new name).
      '--IdentityProvider.token=',
      '--ServerApp.password=',
      '--ServerApp.ip=127.0.0.1',
      `--port=${port}`,
      '--ServerApp.port_retries=0',
      `--ServerApp.root_dir=${work}`,
      // No news or update checks: nothing to fetch on a closed network, no toasts.
      '--LabApp.news_url=None',
      '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'
    ],
    {
      // Settings, workspaces and config of this run only: no tabs restored from
      // another session, no user settings changing what renders.
      env: {
        // As under nbval (make test): `%allsource open` without a path is a memory
        // store, whatever demo store the caller's shell names.
        ...withoutDefaultStore(process.env),
        JUPYTER_CONFIG_DIR: path.join(root, 'config'),
        JUPYTERLAB_SETTINGS_DIR: path.join(root, 'settings'),
        JUPYTERLAB_WORKSPACES_DIR: path.join(root, 'workspaces'),
        IPYTHONDIR: path.join(root, 'ipython')
      },
      stdio: ['ignore', out, out]
    }
  );
  try {
    await waitUntilUp(url, lab, log);
  } catch (error) {
    lab.kill('SIGKILL');
    throw error;
  }
  process.env.ASL_LAB_URL = url;

  return async () => {
    if (lab.exitCode === null) {
      lab.kill('SIGTERM');
      const stopped = new Promise(r => lab.once('exit', r));
      const timeout = new Promise(r => setTimeout(r, 10_000));
      await Promise.race([stopped, timeout]);
      if (lab.exitCode === null) {
        lab.kill('SIGKILL');
      }
    }
    fs.closeSync(out);
    fs.rmSync(root, { recursive: true, force: true });
  };
}
