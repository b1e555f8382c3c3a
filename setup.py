"""Packaging for mlp_names: every piece of metadata comes from settings.ini.

Adapted from the setup.py that nbdev 2.4 generates, without its `pkg_resources` import
(current setuptools no longer ships it): requirements are passed to setuptools as plain strings.
"""
import atexit, shutil, tempfile
from configparser import ConfigParser
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = ('version description keywords author author_email license status min_python '
            'audience language lib_name user git_url').split()
missing = [o for o in expected if o not in cfg]
if missing: raise SystemExit(f'settings.ini is missing: {", ".join(missing)}')

licenses = {'mit': ('MIT License', 'OSI Approved :: MIT License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable',
            '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']
py_versions = '3.9 3.10 3.11 3.12 3.13'.split()
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
console_scripts = cfg.get('console_scripts', '').split()
# setuptools 77+ takes an SPDX license expression and deprecates license classifiers; older ones need the classifier
spdx = int(setuptools.__version__.split('.')[0]) >= 77
license_metadata = {'license_expression': 'MIT'} if spdx else {'license': lic[0]}
# build/ and *.egg-info go to a scratch directory, so that `pip install <checkout>` leaves the checkout as it was
scratch = tempfile.mkdtemp(prefix='mlp_names_build_')
atexit.register(shutil.rmtree, scratch, ignore_errors=True)

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    **license_metadata,
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ([] if spdx else ['License :: ' + lic[1]]) + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    keywords=cfg['keywords'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    # the model shipped with the package (chapter 06, `Sampler.pretrained`): its weights and their record
    package_data={cfg['lib_name']: ['pretrained.safetensors', 'pretrained.json']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    python_requires='>=' + min_python,
    zip_safe=False,
    options={'build': {'build_base': scratch}, 'egg_info': {'egg_base': scratch}},
    entry_points={
        'console_scripts': console_scripts,
        'nbdev': [f'{cfg["lib_name"]}={cfg["lib_name"]}._modidx:d'],
    },
)
